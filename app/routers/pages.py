"""HTML pages. Each renders a thin template; a page module in static/js does the rest."""
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app import i18n, resources
from app.deps import services
from engine import choices
from engine.datasets import SPECS

router = APIRouter(tags=["pages"], include_in_schema=False)
templates = Jinja2Templates(directory=resources.where("templates"))

PAGES = [  # (path, template) in the order the menu and home page list them; their title, menu
    # label and one-line description are texts "page.<path>.title|nav|blurb" in app/i18n/<lang>.json
    ("/neuron", "neuron.html"), ("/draw", "draw.html"), ("/classify", "classify.html"), ("/teach", "teach.html"),
    ("/transfer", "transfer.html"),
    ("/descent", "descent.html"), ("/filters", "filters.html"), ("/session", "session.html"),
    ("/train", "train.html"),
]
JOIN = ("/join", "join.html")  # students arrive by the join link or QR code: not in the menu


def _page(request: Request, template: str, **context) -> HTMLResponse:
    lang = i18n.choose(request)
    t = i18n.translator(lang)
    config = {"defaultModel": request.app.state.settings.default_model, "lang": lang,
              "strings": i18n.strings(lang), **context.pop("config", {})}
    path = request.url.path
    response = templates.TemplateResponse(request, template, {
        "title": t(f"page.{path}.title", "NeuronLab"), "config": config, "pages": PAGES, "lang": lang, "t": t,
        "languages": i18n.LANGUAGES, "shortcuts": i18n.shortcuts(lang, path),
        "choices": choices, **context})  # the names a page's menus offer (activations, ...), declared once
    if request.query_params.get("lang") == lang:  # a link with ?lang= keeps its language on every next page
        response.set_cookie("neuronlab_lang", lang, max_age=365 * 24 * 3600, samesite="lax")
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request):
    registry = services(request).registry  # a page has no owner token: it lists the shipped models only
    return _page(request, "index.html", models=[c for c in registry.cards() if c.id not in registry.user_ids])


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request):
    """Swagger UI served from this server (node_modules), never from a CDN."""
    return templates.TemplateResponse(request, "docs.html", {})


# A training job's statuses (engine/choices.py), for the pages that follow a job: each by name
# (jobStatus.QUEUED, ...), and those of a job that is over.
JOB_STATUS_CONFIG = {"jobStatus": choices.JOB_STATUSES, "finalStatuses": list(choices.FINAL)}
PAGE_CONFIG = {  # extra config a page's module needs, by path
    "/train": {"labels": {name: list(spec.labels) for name, spec in SPECS.items()}, **JOB_STATUS_CONFIG},
    "/teach": JOB_STATUS_CONFIG,
    # what the descent page's exercises start with: the optimizer, and the split network's activation
    "/descent": {"defaultOptimizer": choices.DEFAULT_OPTIMIZER, "defaultActivation": choices.DEFAULT_SPLIT_ACTIVATION},
}


def _classify_config(request: Request) -> dict:
    """/classify starts with the photo network: a photo of a house is never answered with a digit."""
    settings = request.app.state.settings
    return {"defaultModel": settings.photo_model if settings.photo_model in services(request).registry
            else settings.default_model}


PAGE_CONFIG_BY_REQUEST = {"/classify": _classify_config}


def _register(path: str, template: str) -> None:
    def page(request: Request):
        config = {**PAGE_CONFIG.get(path, {}), **(PAGE_CONFIG_BY_REQUEST[path](request) if path in PAGE_CONFIG_BY_REQUEST else {})}
        return _page(request, template, config=config)
    router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse, name=template)


for _path, _template in [*PAGES, JOIN]:
    _register(_path, _template)
