"""Training: recipes, the fold trainer with hooks, and resumable runs (one path: :func:`run`).

Example:
    >>> from kerasmer.training import RunConfig, run
    >>> result = run(RunConfig(model="learnet", recipe="learnet", output_dir="runs/demo"))  # doctest: +SKIP
"""

from kerasmer.training.config import RunConfig, load_config
from kerasmer.training.recipes import Recipe, get_recipe, list_recipes
from kerasmer.training.runner import run, run_seeds
from kerasmer.training.trainer import (FoldFailed, FoldState, FoldTrainer, KeepModel, SaveFoldModels, TrainerHook,
                                     TrainSpec)

__all__ = ["FoldFailed", "FoldState", "FoldTrainer", "KeepModel", "Recipe", "RunConfig", "SaveFoldModels", "TrainSpec",
           "TrainerHook", "get_recipe", "list_recipes", "load_config", "run", "run_seeds"]
