"""`GET /` on a store's host: which store this is and where to go next, instead of a bare 404."""

from __future__ import annotations

from pydantic import BaseModel
from quart import Blueprint

from kernel import current_kernel, tenant_id_var, validate_response
from plugins.tenancy.directory import directory_for


class StoreLinks(BaseModel):
    docs: str | None
    openapi: str | None


class StoreHome(BaseModel):
    id: str
    slug: str
    name: str
    links: StoreLinks


def storefront_blueprint() -> Blueprint:
    blueprint = Blueprint("tenancy_home", __name__)

    @blueprint.get("/")
    @validate_response(StoreHome)
    async def home() -> StoreHome:
        """The store this host serves: its name, and where the API is described."""
        kernel = current_kernel()
        tenant = await directory_for(kernel).for_id(str(tenant_id_var.get()))
        assert tenant is not None  # resolution bound this request to it a moment ago
        documented = kernel.settings.openapi
        links = StoreLinks(
            docs="/docs" if documented and kernel.settings.docs else None,
            openapi="/openapi.json" if documented else None,
        )
        return StoreHome(id=tenant.id, slug=tenant.slug, name=tenant.name, links=links)

    return blueprint
