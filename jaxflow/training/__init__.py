"""Training: state, losses, optimizers, pure steps, the loop, checkpoints and logging.

(The package is `jaxflow.training`, not `jaxflow.train`, so that `jaxflow.train(config, workdir)` can be
the function DESIGN.md asks for without shadowing a subpackage of the same name.)
"""
