"""The training wing: one loop for pre-training and fine-tuning on timm, any device.

Modules: ``engine`` (the loop: ``train``, ``evaluate``), ``runfolder`` (the run folder's files),
``runtime`` (device, processes, seeds, the sample stream), ``augment`` (timm recipes and the
paper's Table-1 options), ``pretrain_data`` (fractals in memory, ImageFolder, 3D views),
``downstream`` (Fashion-MNIST, CIFAR, ImageFolder), ``models`` (timm ViTs), ``export`` and
``card`` (timm-loadable weights and their model card); the batched pipeline on the model's device:
the ``batched`` package (the choice and the batches; ``sources``, ``draw``, ``transforms`` and
``pil``: timm's recipe on whole batches).
"""
