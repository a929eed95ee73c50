"""HTML pages. Each renders a thin template; a page module in static/js does the rest."""
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app import i18n
from app.settings import ROOT
from engine.datasets import SPECS

router = APIRouter(tags=["pages"], include_in_schema=False)
templates = Jinja2Templates(directory=ROOT / "templates")

PAGES = [  # (path, template, title, menu label, one-line description) in the order the home page lists them
    ("/draw", "draw.html", "Draw a digit", "Draw",
     "Draw with mouse, finger or pen; a CNN reads it live, stroke by stroke, and shows the 28x28 it sees."),
    ("/classify", "classify.html", "Classify photos", "Classify",
     "Upload photos or use the webcam: the network's guess, the steps that prepared the photo, where it looked."),
    ("/teach", "teach.html", "Teach new classes", "Teach",
     "Name your own classes, add webcam shots or photos, train a CNN on them and try it live."),
    ("/descent", "descent.html", "Gradient descent", "Descent",
     "Step gradient descent with a learning rate you choose: too small crawls, too large diverges."),
    ("/filters", "filters.html", "Inside the network", "Inside",
     "Convolution step by step, the kernel table, feature maps and learned filters of a real CNN."),
    ("/session", "session.html", "Class session", "Class",
     "Start a class session: students join with a code and draw; their drawings fill a live gallery here."),
    ("/train", "train.html", "Train a network", "Train",
     "Train a real network live: loss and accuracy curves, pause, step one batch, change the learning rate."),
]


def _page(request: Request, template: str, title: str, **context) -> HTMLResponse:
    lang = i18n.choose(request)
    t = i18n.translator(lang)
    config = {"defaultModel": request.app.state.settings.default_model, "lang": lang,
              "strings": i18n.strings(lang), **context.pop("config", {})}
    path = request.url.path
    return templates.TemplateResponse(request, template, {
        "title": t(f"page.{path}.title", title), "config": config, "pages": PAGES, "lang": lang, "t": t,
        "languages": i18n.LANGUAGES, "shortcuts": i18n.shortcuts(lang, path), **context})


@router.get("/", response_class=HTMLResponse)
def home(request: Request):
    return _page(request, "index.html", "NeuronLab", models=request.app.state.registry.cards())


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request):
    """Swagger UI served from this server (node_modules), never from a CDN."""
    return templates.TemplateResponse(request, "docs.html", {})


PAGE_CONFIG = {  # extra config a page's module needs, by path
    "/train": {"labels": {name: list(spec.labels) for name, spec in SPECS.items()}},
}


def _register(path: str, template: str, title: str) -> None:
    def page(request: Request):
        return _page(request, template, title, config=PAGE_CONFIG.get(path, {}))
    router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse, name=template)


for _path, _template, _title, _, _ in PAGES:
    _register(_path, _template, _title)
_register("/join", "join.html", "Join a class")  # students arrive by the join link or QR code
