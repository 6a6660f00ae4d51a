"""Does the canonical camera transform help a model on cameras it was not trained on?

  python benchmarks/camera_transform.py --workdir=runs/demo

Scores a trained demo model (``config.eval.checkpoint`` of ``--workdir``, 'best' by default)
with the project's evaluation protocol (``evaluate.evaluate_model``: flip averaging, clipping,
resizing, d1 ... silog on whole frames) on ``synthetic_rooms/demo``'s test rooms as the demo's
own Kinect-like camera sees them (a focal length drawn per room, 56-67 degrees wide) and as
cameras of 40 and 90 degrees see them (``synthetic_rooms/demo_fov40``, ``demo_fov90``: the
same rooms and poses), each without and with ``eval.camera_transform`` (depth x f_frame /
f_train at the network input, inference/focal.py). The variants are built on first use (a
minute each on 2 CPU cores). Prints a markdown table.
"""

from __future__ import annotations

import argparse

from flax import nnx
import jax

from adabins_jax import checkpointing
from adabins_jax import configs
from adabins_jax import evaluate
from adabins_jax import input_pipeline
from adabins_jax import network_input
from adabins_jax import parallel
from adabins_jax import steps
from adabins_jax.inference import camera as camera_lib
from adabins_jax.inference import focal as focal_lib

# The splits scored: (dataset, horizontal field of view in degrees or None for demo's own).
VARIANTS = (('synthetic_rooms/demo', None), ('synthetic_rooms/demo_fov40', 40.0),
            ('synthetic_rooms/demo_fov90', 90.0))


def score(config, model, mesh, dataset: str, transform: bool) -> dict[str, float]:
  """The protocol's metrics of ``model`` on ``dataset``'s test split."""
  config = config.copy_and_resolve_references()
  config.data.dataset = dataset
  config.eval.camera_transform = transform
  batches = input_pipeline.create_eval_dataset(config.data, config.eval.batch_size,
                                               with_focal=transform)
  with jax.set_mesh(mesh):
    results, _ = evaluate.evaluate_model(
        steps.make_eval_step(config, nnx.graphdef(model)), model, batches, mesh)
  return results


def table(config, model, mesh) -> str:
  """The markdown table: one row per camera, d1 and abs_rel without and with the transform."""
  frame_w = config.data.frame_size[1]
  input_w = network_input.trained_input_size(config)[1]
  train_fx = camera_lib.training_focal_px(config)
  train_fov = focal_lib.fov_from_fx(train_fx, input_w)
  # The demo's renderer draws 480-560 px at 640 px wide (rooms/scene.py).
  low, high = (f * input_w / 640 / train_fx for f in (480.0, 560.0))
  lines = ['| test rooms seen at | depth scale | d1 without | d1 with | abs_rel without | '
           'abs_rel with |', '|---|---|---|---|---|---|']
  for dataset, fov in VARIANTS:
    plain = score(config, model, mesh, dataset, transform=False)
    scaled = score(config, model, mesh, dataset, transform=True)
    if fov is None:
      camera = f"demo's own camera (56-67 deg; the training camera: {train_fov:.1f} deg)"
      scale = f'{low:.3f}-{high:.3f}'
    else:
      fx = focal_lib.fx_from_fov(fov, frame_w)
      camera = f'{fov:g} deg (fx {fx:.1f} px at {frame_w} px)'
      scale = f'{focal_lib.depth_scale(fx, frame_w, input_w, train_fx):.3f}'
    lines.append(f'| {camera} | {scale} | {plain["d1"]:.3f} | {scaled["d1"]:.3f} | '
                 f'{plain["abs_rel"]:.3f} | {scaled["abs_rel"]:.3f} |')
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='demo', help='the trained run\'s config')
  parser.add_argument('--workdir', required=True, help='the trained run\'s folder')
  args = parser.parse_args()
  config = configs.load(args.config)
  model, source = checkpointing.load_model(config, args.workdir)
  mesh = parallel.create_mesh(config.train.get('num_devices') or None)
  nnx.update(model, parallel.replicate(nnx.state(model), mesh))
  print(f'Camera transform on {source}:\n')
  print(table(config, model, mesh))


if __name__ == '__main__':
  main()
