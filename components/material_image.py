"""The address of a material's band-structure image, defined once.

The app serves :data:`MATERIAL_IMAGE_ROUTE` (``app.register_routes``); every page, component
and benchmark writes an image's address with :func:`material_image_url`. The explorer's browser
side (``assets/explore.js``) writes thousands of them (hover, prefetch, gallery), so the page
hands it :func:`material_image_template`, the address with the name left as :data:`NAME_SLOT`,
and it fills in the name quoted exactly as :func:`quote_name` does (``encodeURIComponent``,
plus ``!'()*``).
"""

from __future__ import annotations

from urllib.parse import quote

#: the Flask route of a material's image (the window in eV, the material's name)
MATERIAL_IMAGE_ROUTE = "/material-image/<window>/<material>.png"
#: where the quoted name goes in :func:`material_image_template`
NAME_SLOT = "{name}"


def quote_name(material: str) -> str:
    """A material's name as one path segment: every byte but ``A-Z a-z 0-9 _ . - ~``
    percent-encoded (UTF-8), so that ``/``, ``#``, ``?``, ``+``, ``%`` and spaces survive."""
    return quote(str(material), safe="")


def material_image_template(window: float | None) -> str | None:
    """The image address of every material of a model with this image window (eV), with the
    name left as :data:`NAME_SLOT`; None when the model has no images (no window)."""
    if window is None:
        return None
    return f"/material-image/{float(window):g}/{NAME_SLOT}.png"


def material_image_url(window: float | None, material: str) -> str | None:
    """The address of one material's image (None when the model has no image window)."""
    template = material_image_template(window)
    return None if template is None else template.replace(NAME_SLOT, quote_name(material))
