"""What the explorer's browser side (``assets/explore.js``) is told once, through the page's
client-config store (pages/explore.py): the component ids it acts on, the points' trace, the
colours, how many images to prefetch and where a material's name goes in an image address.
"""

from __future__ import annotations

from app_state import is_shared_server
from components import explore_ids as ids
from components.discover_panels import GALLERY_PAGE
from components.material_image import NAME_SLOT
from components.scatter import (
    DECODE_AROUND,
    DECODE_KEEP,
    PLACED,
    POINTS,
    PREFETCH_ALL_MAX,
    PREFETCH_AROUND,
    PREFETCH_RADIUS_PX,
    SCALE_COLOURS,
    UNSELECTED_CODE,
)


def client_config() -> dict:
    """What assets/explore.js needs to know once: ids, the points' trace, the colours."""
    return {
        "graph": ids.GRAPH, "img": ids.HOVER_IMG, "name": ids.HOVER_NAME, "tip": ids.HOVER_TIP, "click": ids.CLICKED,
        "points": POINTS, "placed": PLACED, "prefetch_around": PREFETCH_AROUND, "prefetch_radius": PREFETCH_RADIUS_PX,
        # a local app has one user: all of a small map's images; a shared server, around the cursor
        "prefetch_all": 0 if is_shared_server() else PREFETCH_ALL_MAX,
        "decode_around": DECODE_AROUND, "decode_keep": DECODE_KEEP,
        "sizes_box": ids.SIZES_BOX,
        "colours": list(SCALE_COLOURS), "unselected_code": UNSELECTED_CODE,
        "model_list": ids.MODEL_LIST, "selection": ids.SELECTION, "gallery_box": ids.GALLERY_BOX,
        "gallery": ids.GALLERY, "gallery_info": ids.GALLERY_INFO, "gallery_clear": ids.GALLERY_CLEAR,
        "page_size": GALLERY_PAGE,
        # where the name goes in the view's image address (components/material_image.py)
        "image_name_slot": NAME_SLOT,
    }
