"""The analysis wing: what the notebooks read; it never trains.

Modules: ``runs`` (read-only readers of finished runs), ``stats`` (intervals, tests, Holm),
``claims`` (the pre-registered claims and their verdicts), ``paper`` (the published tables as data
and our numbers beside them), ``pilots`` (the fine-tuning length pilots: merged records and the
plateau rule), ``plots`` (the book's figures).
"""
