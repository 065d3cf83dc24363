"""The book's explorer as a JupyterLab widget (anywidget): the same JavaScript, the kernel as host.

``ExplorerWidget`` runs the front end of ``explorer.web`` (the canvas, every control, the exact
renderer in JavaScript) and answers its two requests from the kernel: a category by number from the
exact FractalDB search (any number, searched on demand and cached for the session, where the book
page embeds only the first 1,000) and the pre-training augmentation previews of the system on
screen (``model.augmentation_previews``). It opens on a search category, on a category of a search
result folder (``from_folder``) or on any system (``from_ifs``, e.g. a random candidate from
``model.random_ifs``), with given view settings or the front end's defaults. The state drawn last
comes back as the ``state`` trait, so ``widget.model()`` gives it as an ``ExplorerModel`` (its
readouts, image and CSV export).
"""

from __future__ import annotations

import base64
import traceback
from pathlib import Path

import anywidget
import numpy as np
import traitlets

from ..errors import ParamError, check_positive_int
from ..fractals.ifs import IFS
from ..fractals.png import encode_png
from . import web
from .model import (
    FILTER_SIZE,
    ExplorerModel,
    ViewSettings,
    augmentation_previews,
    folder_category,
    search_category,
)


def category_reply(index: int) -> dict:
    """Category ``index`` of the exact search as the front end takes it: rows a..f,p and the
    search's record in lit filter pixels."""
    ifs, fill = search_category(check_positive_int("category", index, minimum=0))
    return {"rows": ifs.to_rows().tolist(), "lit": round(fill * FILTER_SIZE * FILTER_SIZE)}


def model_from_state(state: dict) -> ExplorerModel:
    """The ``ExplorerModel`` of a front-end state (``explorer.state()`` in JavaScript).

    Raises:
        ParamError: the state names no system or has settings the renderer refuses.
    """
    try:
        view = ViewSettings(
            size=int(state["size"]),
            n_points=int(state["points"]),
            mode=str(state["mode"]),
            a_weight=float(state["aWeight"]),
            mask_seed=int(state["seed"]),
            row=int(state["row"]),
        ).validate()
    except (KeyError, TypeError, ValueError) as err:
        raise ParamError("state", f"not an explorer state: {err}") from None
    if state.get("maps"):
        rows = np.array(state["maps"], dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != 7:
            raise ParamError("state", f"maps must be rows of 7 numbers a..f,p, got shape {rows.shape}")
        return ExplorerModel(rows[:, :6], rows[:, 6], view, "edited system")
    if state.get("category") is None:
        raise ParamError("state", "names neither maps nor a category")
    ifs, fill = search_category(int(state["category"]))
    return ExplorerModel.from_ifs(ifs, f"search {int(state['category']):05d}", view, fill)


class ExplorerWidget(anywidget.AnyWidget):
    """The explorer in JupyterLab: ``display(ExplorerWidget(417))``.

    Args:
        category: the search category to open on (any number; the search runs as far as needed).
        view: the drawing settings to open with (default: the front end's, ``ViewSettings()``).
        hash: instead of both, a full state as the book page's URL hash carries it
            (``#c=417&row=3...``, see ``web.state_hash``).

    Attributes:
        state: the state drawn last (category, row, flip, mode, seed, points, size, aWeight, maps
            when edited), set by the front end.
        hash: the same state as a URL hash; setting it from Python moves the view.
    """

    _esm = web.widget_esm()
    _css = web.widget_css()
    facts = traitlets.Dict().tag(sync=True)
    hash = traitlets.Unicode("").tag(sync=True)
    state = traitlets.Dict().tag(sync=True)

    def __init__(
        self, category: int = 0, *, view: ViewSettings | None = None, hash: str | None = None, **kwargs
    ):
        if hash is None:
            hash = web.state_hash(category, view)
        super().__init__(facts=web.facts(), hash=hash, **kwargs)
        self.on_msg(self._on_msg)

    @classmethod
    def from_ifs(cls, ifs: IFS, view: ViewSettings | None = None, **kwargs) -> ExplorerWidget:
        """Open on the system ``ifs`` (no category: the front end shows it as a system of its own)."""
        return cls(hash=web.state_hash(ifs=ifs, view=view), **kwargs)

    @classmethod
    def from_folder(
        cls, folder: str | Path, index: int = 0, view: ViewSettings | None = None, **kwargs
    ) -> ExplorerWidget:
        """Open on category ``index`` (0-based, in name order) of a search result folder of
        ``NNNNN.csv`` files, such as ``python -m ofdb_study search`` writes."""
        return cls.from_ifs(folder_category(folder, index), view, **kwargs)

    def _on_msg(self, _widget, content, _buffers) -> None:
        self.send(self.answer(content))

    def answer(self, content: dict) -> dict:
        """The reply to one front-end request (``{"kind": "category" | "augment", "id", ...}``).

        Errors come back as ``{"id", "error": message}`` for the front end to show.
        """
        reply = {"id": content.get("id")}
        try:
            if content.get("kind") == "category":
                reply.update(category_reply(content.get("index")))
            elif content.get("kind") == "augment":
                reply.update(_augment_reply(content.get("state") or {}))
            else:
                raise ParamError("kind", f"must be category or augment, got {content.get('kind')!r}")
        except ParamError as err:
            reply["error"] = str(err)
        except Exception as err:  # the kernel must answer; the traceback goes to the log
            reply["error"] = f"{type(err).__name__}: {err}"
            self.log.error(traceback.format_exc())
        return reply

    def _move(self, target: str) -> None:
        """Set the hash to the system of hash ``target`` (its ``c=`` and ``maps=``) with the view
        settings of the current one."""
        system = ("c=", "maps=")
        parts = [p for p in target.lstrip("#").split("&") if p.startswith(system)]
        keep = [p for p in self.hash.lstrip("#").split("&") if p and not p.startswith(system)]
        self.hash = "#" + "&".join([parts[0], *keep, *parts[1:]])

    def show(self, category: int) -> None:
        """Move the view to search category ``category`` (view settings kept)."""
        self._move(web.state_hash(category))

    def load(self, ifs: IFS) -> None:
        """Move the view to the system ``ifs`` (view settings kept), e.g. a folder's category
        (``model.folder_category``) or a random candidate (``model.random_ifs``)."""
        self._move(web.state_hash(ifs=ifs))

    def model(self) -> ExplorerModel:
        """The system and view on screen as an ``ExplorerModel`` (for CSV export, scripts, checks)."""
        if not self.state:
            raise ParamError("state", "nothing drawn yet: display the widget first")
        return model_from_state(self.state)


def _augment_reply(state: dict, n: int = 4) -> dict:
    tiles, notes = augmentation_previews(model_from_state(state), n=n)
    return {
        "tiles": [
            {"title": title, "png": base64.b64encode(encode_png(np.ascontiguousarray(img))).decode("ascii")}
            for title, img in tiles
        ],
        "notes": notes,
    }
