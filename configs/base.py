"""Defaults shared by every jaxflow experiment.

An experiment file calls `base.get_config()` and changes what differs. Fields left `None` are resolved
from the problem definition before training (for example the loss follows from `problem.kind`), so a
config says what it means and nothing more.

Variants: `--config=FILE:NAME` calls the file's `get_config(NAME)`. A file declares the names it takes in a
module-level `VARIANTS` tuple (e.g. `VARIANTS = ("test",)` next to `get_config(variant="")`), and jaxflow
refuses any other name, listing the declared ones; a file without `VARIANTS` (like this one) takes none.
`FILE` alone is always the file's default. Search-space files (`configs/spaces/`, `get_space(variant)`)
follow the same rule.
"""

import ml_collections
from ml_collections import config_dict

from jaxflow.rng import STREAM_NAMES


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  # Randomness: one root seed; `seeds.<stream>` pins one stream independently of it (see jaxflow/rng.py).
  config.seed = 0
  # seeds.<stream>: None takes the stream from `seed`; an integer pins that stream alone.
  config.seeds = ml_collections.ConfigDict({name: config_dict.placeholder(int) for name in STREAM_NAMES})

  # Problem definition: what is predicted from what. The head, the default loss and the metrics follow.
  config.problem = ml_collections.ConfigDict()
  config.problem.kind = "multiclass"  # multiclass | binary | regression
  config.problem.num_classes = config_dict.placeholder(int)  # None: read from the dataset's label feature
  config.problem.input_shape = config_dict.placeholder(tuple)  # None: read from the dataset, e.g. (8, 8, 1)
  config.problem.positive_labels = config_dict.placeholder(tuple)  # binary from multiclass: labels mapped to 1

  # Data: a tfds dataset, read with tfds.data_source (no TensorFlow).
  config.data = ml_collections.ConfigDict()
  config.data.name = "digits"  # shipped, generated, tfds, folder:PATH, csv:PATH or npz:PATH (jaxflow list datasets)
  config.data.data_dir = config_dict.placeholder(str)  # None: $JAXFLOW_DATA_DIR or ~/.cache/jaxflow/...
  config.data.train_split = "train"  # a split name or a tfds slice, e.g. "train[:80%]"
  config.data.eval_split = "test"  # the split every evaluation (and the final one) reads
  # A dataset with a single split (an own folder or CSV): this share of it is held out for evaluation,
  # stratified by class, the same examples in every run (jaxflow/data/holdout.py); 0: refuse instead.
  config.data.holdout = 0.2
  # (x - mean) / std per feature, fitted on the training split (jaxflow/data/standardize.py); None: on for
  # csv:/npz: feature vectors, off for images; True / False force it.
  config.data.standardize = config_dict.placeholder(bool)
  config.data.input_feature = "image"  # the dataset feature that is the model's input
  config.data.label_feature = "label"  # the dataset feature that is the target
  config.data.classes = config_dict.placeholder(tuple)  # keep only these labels (train and eval), e.g. (5, 6, 7, 8, 9)
  config.data.train_examples = config_dict.placeholder(int)  # use the first N training examples (after `classes`)
  # Adapting the dataset to the problem (jaxflow/data/adapt.py), after `classes` / `train_examples`:
  config.data.adapt = ml_collections.ConfigDict()
  config.data.adapt.relabel = config_dict.placeholder(
    tuple
  )  # new label per dataset label (merge; -1 drops), e.g. (0, 1, 0, 1, ...)
  config.data.adapt.resize = config_dict.placeholder(tuple)  # (height, width) of resized images
  config.data.adapt.grayscale = False  # RGB -> one luminance channel
  config.data.metadata_features = ()  # per-example attributes read along (e.g. ("daylight",)): the audit's bias checks
  # A per-example attribute whose values are groups (e.g. "camera"): every evaluation also reports each group's
  # accuracy, balanced accuracy and calibration error (metrics.jsonl, summary.json, TensorBoard). Classification.
  config.data.group_feature = config_dict.placeholder(str)
  # Class imbalance (jaxflow/data/balance.py): skew the training set on purpose (eval stays as it is),
  # drawn from the `data` stream; then a remedy: the sampler, class weights (`class_weights`) or `loss="focal"`.
  config.data.class_counts = config_dict.placeholder(tuple)  # training examples kept per dataset class
  config.data.imbalance_ratio = config_dict.placeholder(float)  # or: a long tail, largest class / smallest class
  config.data.sampler = (
    "uniform"  # uniform: a permutation per epoch | oversample: classes equally likely (`sampler` stream)
  )
  # Label noise on the training labels (jaxflow/data/label_noise.py), from the `noise` stream; the clean
  # labels and the flips are written to the workdir (label_noise.npz / .json).
  config.data.label_noise = ml_collections.ConfigDict()
  config.data.label_noise.kind = "symmetric"  # symmetric | pairflip (c -> c+1) | matrix
  config.data.label_noise.rate = 0.0  # share of training labels flipped (symmetric, pairflip)
  config.data.label_noise.matrix = config_dict.placeholder(tuple)  # kind=matrix: C rows of P(noisy j | clean i)
  # On-device augmentation of training images (jaxflow/data/augment.py), per example from the `augment`
  # stream, in order; evaluation data is never augmented. E.g. ("hflip(p=0.5)", "rotate(degrees=15)").
  config.data.augment = ()

  # `jaxflow audit` thresholds (any field of jaxflow.auditing.AuditThresholds may be set here).
  config.audit = ml_collections.ConfigDict()
  config.audit.imbalance_ratio = 3.0  # flag a split whose largest / smallest class count is above this
  config.audit.near_duplicate_ratio = 0.1  # near duplicate: L2 distance <= this x the median nearest-neighbour distance
  config.audit.cramers_v = 0.3  # flag a metadata attribute whose association with the label reaches this
  config.audit.shift_p_value = 0.01  # flag a train/eval shift of a statistic below this p-value (KS test) ...
  config.audit.shift_min_ks = 0.1  # ... and at least this large (max CDF gap)

  # Model: a registry name plus its hyperparameters (unused fields are ignored by other models).
  config.model = ml_collections.ConfigDict()
  config.model.name = "mlp"  # mlp | cnn | rnn | gcn | gat | graph_network | stack (jaxflow list models)
  config.model.widths = (256, 256)  # hidden Dense widths (MLP, and the CNN's dense part)
  config.model.conv_features = (32, 64)  # CNN: output channels per conv layer
  config.model.kernel_size = 3  # CNN: square convolution kernel side
  config.model.pool = True  # CNN: 2x2 max-pool after each conv layer
  config.model.activation = "relu"  # also the simple RNN cell's nonlinearity (LSTM/GRU keep tanh/sigmoid)
  config.model.rnn_cell = "lstm"  # RNN: lstm | gru | simple
  config.model.rnn_hidden = (64,)  # RNN: hidden size per stacked recurrent layer
  config.model.rnn_bidirectional = False  # RNN: forward + backward pass, final states concatenated
  config.model.rnn_head = "many_to_one"  # RNN: many_to_one [batch, out] | many_to_many [batch, time, out]
  config.model.gnn_head = config_dict.placeholder(str)  # GNN: node | graph; None: gcn/gat node, graph_network graph
  config.model.attention_heads = 1  # GAT: heads per layer (concatenated; each width must divide by it)
  config.model.message_steps = 3  # GraphNetwork: message-passing steps
  config.model.stages = ()  # stack: registry models chained headless, e.g. ("cnn", "rnn"), then one head
  config.model.dropout_rate = 0.0  # dropout after each hidden layer while training (`dropout` stream)
  # Initializers (jaxflow/models/initializers.py): zeros, ones, constant(v), normal(stddev), uniform(scale),
  # xavier/glorot_{normal,uniform}, he/kaiming_{normal,uniform}, lecun_{normal,uniform}.
  config.model.kernel_init = "lecun_normal"
  config.model.bias_init = "zeros"  # every bias (same names as kernel_init)
  config.model.layer_inits = ()  # per layer: ("dense_0.kernel=normal(stddev=10)", "head.bias=constant(0.1)")

  # Transfer learning (jaxflow/training/transfer.py): start from another run's best (else latest)
  # checkpoint, matched by layer name; freeze / re-initialize layers by name or prefix ("conv" = conv_*).
  config.init_from = config_dict.placeholder(str)  # a workdir
  config.freeze = ()  # layer names or prefixes whose parameters do not train
  config.reinit = ()  # layer names or prefixes initialized afresh instead of copied from init_from

  # Loss: None follows from problem.kind (multiclass: cross_entropy, binary: bce, regression: mse).
  config.loss = config_dict.placeholder(str)
  config.focal_gamma = 2.0  # loss="focal": easy examples weigh (1 - p_true)^gamma; gamma 0 is cross-entropy
  # Per-class loss weights from the training labels: none | inverse_frequency | effective_number (Cui et al.).
  config.class_weights = "none"
  config.class_weights_beta = 0.999  # effective_number's beta

  # Optimizer and learning-rate schedule.
  config.optim = ml_collections.ConfigDict()
  config.optim.name = "adam"  # sgd | momentum | nesterov | adam | adamw | rmsprop | adagrad
  config.optim.lr = 1e-3  # peak learning rate (after warmup, before the schedule decays it)
  config.optim.momentum = 0.9  # momentum, nesterov, rmsprop
  config.optim.weight_decay = 0.0  # adamw: decoupled; others: added to the gradient of kernels
  config.optim.clip_norm = config_dict.placeholder(float)  # global-norm gradient clipping
  config.optim.schedule = "constant"  # constant | cosine | exponential | linear
  config.optim.warmup_steps = 0  # linear warmup from 0 in front of any schedule
  config.optim.decay_rate = 0.5  # exponential: factor per decay_steps
  config.optim.decay_steps = config_dict.placeholder(int)  # exponential: None = one epoch
  config.optim.end_lr_factor = 0.0  # cosine / linear: final lr as a fraction of lr

  # Training loop.
  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 128  # global batch; the last partial batch of an epoch is dropped
  config.train.eval_batch_size = 1024  # evaluation pads and masks, so every example counts
  config.train.epochs = 10  # passes over the training split
  config.train.log_every = 50  # steps between train-metric logs (averaged since the previous log)
  # Overlap epoch e's end with epoch e+1's steps: fused epochs dispatch e+1 before the host logs, evaluates
  # the monitor and checkpoints e; chunked epochs (one run, one device) run e's end on a second thread.
  # The same results either way (tests/training/test_training.py).
  config.train.dispatch_ahead = True
  config.train.steps_per_dispatch = config_dict.placeholder(int)  # None: auto (see jaxflow/training/dispatch.py)
  config.train.histogram_every = 1  # epochs between parameter histograms in TensorBoard
  config.train.layer_stats_every = 0  # epochs between per-layer activation/gradient statistics; 0: off
  # Epochs between the confusion-matrix image and per-class scalars in TensorBoard (and always the last
  # epoch); classification only. metrics.jsonl gets per-class metrics and the matrix every epoch.
  config.train.class_report_every = 1
  config.train.overwrite = False  # True: discard a workdir's previous run instead of resuming it
  # The metric that defines the best epoch: the kept "best" checkpoint, early stopping, restore_best.
  config.train.monitor = "eval/accuracy"  # eval/accuracy | eval/loss | eval/mae (regression)
  config.train.monitor_mode = "max"  # max | min
  config.train.early_stopping = ml_collections.ConfigDict()
  config.train.early_stopping.enabled = False  # stop when `monitor` stops improving
  config.train.early_stopping.patience = 5  # epochs without improvement before stopping
  config.train.early_stopping.min_delta = 0.0  # smallest change of `monitor` that counts as improvement
  config.train.early_stopping.restore_best = True  # end with the best checkpoint's parameters
  # Stop like a NaN when a logged train loss exceeds 10x the first step's (jaxflow/training/divergence.py).
  config.train.stop_on_divergence = True
  # True: set what makes the run bitwise repeatable before the backend starts (GPU: deterministic ops; CPU:
  # nothing is needed) and record it in summary.json (jaxflow/run/determinism_flags.py).
  config.train.deterministic = False

  # Devices and hosts (jaxflow/training/parallel.py). The batch above is global: split over all devices.
  config.parallel = ml_collections.ConfigDict()
  config.parallel.mode = (
    "auto"  # auto (sharded if >1 device) | single | pmap (shard_map + pmean) | sharded (jit over a Mesh)
  )
  config.parallel.num_devices = config_dict.placeholder(int)  # None: every device (of every process)
  config.parallel.max_in_flight = 2  # programs dispatched ahead of the host on >1 device (training/dispatch.py)
  # Several hosts: jax.distributed.initialize with these (else JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
  # JAX_PROCESS_ID from the environment), or detect_cluster=True for SLURM / Open MPI / TPU pods.
  config.parallel.coordinator = config_dict.placeholder(str)  # HOST:PORT of process 0
  config.parallel.num_processes = config_dict.placeholder(int)  # hosts in the job
  config.parallel.process_id = config_dict.placeholder(int)  # this host: 0 .. num_processes - 1
  config.parallel.detect_cluster = False  # read the job from SLURM / Open MPI / a TPU pod
  config.parallel.init_timeout_seconds = 120  # how long hosts wait for each other at start

  # Checkpoints (orbax): saved every N epochs and/or often enough that a kill loses at most S seconds of
  # training (or one epoch, when an epoch takes longer), after the first epoch, at the end, and on SIGINT /
  # SIGTERM; the latest K are kept in checkpoints/latest/, the best epoch's state (held in memory until the
  # next save) in checkpoints/best/. Each is verified on restore; a damaged one falls back to the one before.
  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_epochs = 1  # 0: no epoch cadence
  config.checkpoint.every_seconds = config_dict.placeholder(float)  # None: no time cadence
  config.checkpoint.keep = 3  # latest checkpoints kept (older ones deleted)

  # JAX's persistent compilation cache (jaxflow/run/compile_cache.py): None: $JAXFLOW_COMPILATION_CACHE, else
  # ~/.cache/jaxflow/jax_compilation_cache; "off"; or a directory. A cache dir set in JAX itself wins.
  config.compilation_cache = config_dict.placeholder(str)

  return config


def millisecond_epochs(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Cadences for runs whose epochs take milliseconds (the shipped small datasets on a CPU).

  An orbax save costs ~30 ms in the caller plus ~60 ms of background CPU here, several such epochs: save
  by time (and at the end) instead of every epoch, and draw parameter histograms every 10 epochs. A long
  run of a bigger model keeps base's checkpoint.every_epochs instead.
  """
  config.checkpoint.every_epochs = 0
  config.checkpoint.every_seconds = 60.0
  config.train.histogram_every = 10
  config.train.class_report_every = 10
  return config
