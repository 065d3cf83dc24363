"""The book's explorer as a JupyterLab widget (anywidget): the same JavaScript, the kernel as host.

``ExplorerWidget`` runs the front end of ``explorer.web`` (the canvas, every control, the exact
renderer in JavaScript) and answers its two requests from the kernel: a category by number from the
exact FractalDB search (any number, searched on demand and cached for the session, where the book
page embeds only the first 1,000) and the pre-training augmentation previews of the system on
screen (``model.augmentation_previews``). The state drawn last comes back as the ``state`` trait,
so ``widget.model()`` gives it as an ``ExplorerModel``.
"""

from __future__ import annotations

import base64
import traceback

import anywidget
import numpy as np
import traitlets

from ..errors import ParamError, check_positive_int
from ..fractals.png import encode_png
from . import web
from .model import FILTER_SIZE, ExplorerModel, ViewSettings, augmentation_previews, search_category


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
        hash: instead, a full state as the book page's URL hash carries it (``#c=417&row=3...``).

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

    def __init__(self, category: int = 0, *, hash: str | None = None, **kwargs):
        category = check_positive_int("category", category, minimum=0)
        super().__init__(facts=web.facts(), hash=hash or f"#c={category}", **kwargs)
        self.on_msg(self._on_msg)

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

    def show(self, category: int) -> None:
        """Move the view to search category ``category`` (view settings kept)."""
        category = check_positive_int("category", category, minimum=0)
        keep = [p for p in self.hash.lstrip("#").split("&") if p and not p.startswith(("c=", "maps="))]
        self.hash = "#" + "&".join([f"c={category}", *keep])

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
