"""How the report's pages hang together: links between the overview, each model's page and its
random-weights twin, the control banner, and the tables written as CSV beside a page.

A model with `model.weights: random` is a control; its twin is the pretrained model with the
same model id (and the other way round). Links are relative, so the report folder can be moved
or zipped as a whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pandas as pd


def twin(name: str, models: dict) -> str | None:
    """The model of the same id with the other kind of weights (random ↔ pretrained), if run."""
    info = models.get(name)
    if not info:
        return None
    random = info.get("weights", "pretrained") == "random"
    return next((other for other, o in models.items() if other != name
                 and (o.get("weights", "pretrained") == "random") != random
                 and o.get("id") == info.get("id")), None)


def href(target: str | Path, page: str | Path) -> str:
    """`target` as a URL relative to `page`'s folder."""
    return quote(Path(os.path.relpath(target, Path(page).parent)).as_posix())


def model_links(name: str, html_path: str, site: dict | None) -> dict:
    """The navigation line of a model page (overview, twin) and the twin's link for the banner."""
    site = site or {}
    models = site.get("models") or {}
    nav, other = [], twin(name, models)
    if site.get("overview"):
        nav.append(("← overview of all models", href(site["overview"], html_path), "overview"))
    twin_link = None
    if other:
        random = models[other].get("weights") == "random"
        twin_link = {"name": other, "href": quote(f"{other}.html"),
                     "label": f"{'random-weights control' if random else 'trained model'}: "
                              f"{other}"}
        nav.append((twin_link["label"], twin_link["href"], "twin"))
    return {"nav": nav, "twin": twin_link}


def control(name: str, config: dict, links: dict) -> dict | None:
    """What the banner of a random-weights control page says; None for a trained model."""
    model = config["model"]
    if model.get("weights", "pretrained") != "random":
        return None
    return {"name": name, "id": model.get("id", ""), "seed": model.get("init_seed"),
            "twin": links["twin"]}


def write_csv(tables: dict[str, pd.DataFrame], folder: Path, page: Path) -> dict[str, str]:
    """Write each table as `<name>.csv` into `folder`; return its link from the page, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    links = {}
    for name, frame in tables.items():
        if frame is None:
            continue
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        links[name] = href(path, page)
    return links
