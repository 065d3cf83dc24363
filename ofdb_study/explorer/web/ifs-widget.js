// The explorer as a JupyterLab widget (anywidget): the same front end, the kernel as its host. The
// kernel answers category requests with the exact search (any number) and renders the pre-training
// augmentation previews; the drawn state goes back to the kernel as the ``state`` trait.

import { mount } from "./ifs-explorer.js";

export default {
  render({ model, el }) {
    const waiting = new Map();
    let next = 1;
    const ask = (content) =>
      new Promise((resolve) => {
        const id = next++;
        waiting.set(id, resolve);
        model.send({ ...content, id });
      });
    const onMessage = (msg) => {
      if (msg && waiting.has(msg.id)) {
        waiting.get(msg.id)(msg);
        waiting.delete(msg.id);
      }
    };
    model.on("msg:custom", onMessage);
    const api = mount(el, {
      facts: model.get("facts"),
      maxCategory: null,
      useUrl: false,
      initial: model.get("hash"),
      category: (k) => ask({ kind: "category", index: k }),
      augment: (state) => ask({ kind: "augment", state }),
      onGood: (state, hash) => {
        model.set("state", state);
        model.set("hash", hash);
        model.save_changes();
      },
    });
    const onHash = () => {
      if (model.get("hash") !== api.hash()) api.setHash(model.get("hash"));
    };
    model.on("change:hash", onHash);
    el.ofdbExplorer = api;
    return () => {
      model.off("msg:custom", onMessage);
      model.off("change:hash", onHash);
      api.destroy();
    };
  },
};
