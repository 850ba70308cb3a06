"""bandscape backend: all computation, no Dash.

Import it in a notebook and do everything the app does::

    from backend.data.catalog import Catalog
    from backend.cluster import ClusterParams, cluster_model
    cat = Catalog("../shared/data/heuslerene")
    result = cluster_model(cat, "resnet50_latent3_window1eV_steps90_split1.0_width1", ClusterParams())
"""

__version__ = "0.1.0"
