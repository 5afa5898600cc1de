"""geolesson: helpers for the geolesson book on cloud-native Earth-observation data for ML.

Data flows one way through the modules: ``sources`` (where data comes from) ->
STAC search (items) -> ``cog`` (arrays) -> indices / datacube -> chips -> batches.
The offline mirror (``geolesson.mirror``) is a separate leaf that the teaching
helpers never import: they only ever see its URLs.
"""

__version__ = "0.1.0"
