"""TensorBoard's own reading of the HParams summaries a study wrote: what the HPARAMS tab lists.

The multiplexer is the one TensorBoard's server loads a logdir with; the plugin data is parsed with the
HParams plugin's own metadata functions, and the metric values are the sessions' scalars as TensorBoard
reads them.
"""

from __future__ import annotations

from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import metadata


def read_hparams(logdir: str) -> tuple[dict, dict[str, dict]]:
  """(experiment: {"hparams": names, "metrics": tags}, {run: {"hparams", "metrics", "status"}}) under logdir."""
  mux = EventMultiplexer()
  mux.AddRunsFromDirectory(logdir)
  mux.Reload()
  experiment, sessions = {}, {}
  for run, tags in mux.PluginRunToTagToContent(metadata.PLUGIN_NAME).items():
    for tag, content in tags.items():
      if tag == metadata.EXPERIMENT_TAG:
        exp = metadata.parse_experiment_plugin_data(content)
        experiment = {"hparams": [h.name for h in exp.hparam_infos], "metrics": [m.name.tag for m in exp.metric_infos]}
      elif tag == metadata.SESSION_START_INFO_TAG:
        start = metadata.parse_session_start_info_plugin_data(content)
        values = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
        scalars = {t: mux.Tensors(run, t)[-1] for t in mux.GetAccumulator(run).Tags()["tensors"]}
        sessions.setdefault(run, {})["hparams"] = values
        finals = {t: e for t, e in scalars.items() if t.startswith("hparams/")}
        sessions[run]["metrics"] = {t[len("hparams/") :]: float(e.tensor_proto.float_val[0]) for t, e in finals.items()}
      elif tag == metadata.SESSION_END_INFO_TAG:
        sessions.setdefault(run, {})["status"] = metadata.parse_session_end_info_plugin_data(content).status
  return experiment, sessions
