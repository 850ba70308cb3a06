"""Data: what a data root holds and how it is read and written.

- :mod:`.roots`: the default data root (the demo), one definition for the app and the CLI
- :mod:`.catalog`: data roots, which models exist, their hyperparameters and files
- :mod:`.model_ids`: model ids (made and parsed) and the files of a model under a root
- :mod:`.tables`: fingerprint and embedding tables, read and checked; a model's arrays
- :mod:`.bands`: band structures from VASP, band-data files, training and display images
- :mod:`.importing`: a user's own materials (VASP, vasprun.xml, Quantum ESPRESSO, pymatgen JSON,
  band plots, zips) read one by one, with a problem per bad file, and written into a data root
- :mod:`.image_window`: which energy window a folder of training images shows, and the check
  that a training run's window agrees with it
- :mod:`.image_cache`: display images drawn from band data off the request thread
- :mod:`.labels`: known labels of materials (``labels.csv``)
- :mod:`.elements`: chemical elements of materials, from their formulas
- :mod:`.demo`: the project's demo dataset (tight-binding lattices), :mod:`.synth`: synthetic
  roots of any size for benchmarks
- :mod:`.dftlike`: DFT-like tight-binding materials, E_F from their electron count, with exact
  physics labels; :mod:`.tightbinding`: its lattices, Hamiltonians and band analysis near E_F,
  :mod:`.dftlike_cell`: its random cell of one material
- :mod:`.plots`: published display plots as pixels (reading, the axes frame) and as training images
"""
