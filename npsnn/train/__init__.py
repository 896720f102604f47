"""Training: optimizers, schedules, the CIFAR trainer, checkpoints and exact resume."""
