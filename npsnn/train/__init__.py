"""Training: optimizers, schedules, the CIFAR trainer, checkpoints and exact resume."""
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .args import TrainArgs
from .evaluate import evaluate
from .trainer import Trainer, train

__all__ = ["TrainArgs", "Trainer", "evaluate", "load_checkpoint", "load_model",
           "save_checkpoint", "train"]
