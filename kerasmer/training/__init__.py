"""Training and evaluation: recipes, protocols with honest selection, resumable runs.

Example:
    >>> from kerasmer.training import RunConfig, run
    >>> result = run(RunConfig(model="learnet", recipe="learnet", output_dir="runs/demo"))  # doctest: +SKIP
"""

from kerasmer.training.config import RunConfig, load_config
from kerasmer.training.recipes import Recipe, get_recipe, list_recipes
from kerasmer.training.runner import run

__all__ = ["Recipe", "RunConfig", "get_recipe", "list_recipes", "load_config", "run"]
