"""Discovery: what the explorer offers beyond the map.

- :mod:`.neighbours`: nearest materials in fingerprint space, under the clustering's metric
- :mod:`.consensus`: consensus of several models' clusterings and per-material stability
- :mod:`.cards`: cluster cards (medoid, over-represented elements, label mix)
- :mod:`.subset`: representative subsets that cover the clusters
- :mod:`.place`: new materials placed on an existing map (neighbours, cluster, position)
- :mod:`.explorer_view`: the explorer's view and its URL, one definition for pages and notebooks
"""
