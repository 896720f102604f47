"""Training: optimizers, schedules, the CIFAR trainer, checkpoints and exact resume."""
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .trainer import TrainArgs, Trainer, evaluate, train

__all__ = ["TrainArgs", "Trainer", "evaluate", "load_checkpoint", "load_model",
           "save_checkpoint", "train"]
