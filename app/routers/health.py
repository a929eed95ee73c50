from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """Liveness check for load balancers and Docker."""
    return {"status": "ok"}
