"""Small stand-ins shared by the training tests: a tiny model honouring the model contract.

The contract (adabins_jax.models): ``model(images)`` with images (N, H, W, 3) returns
``(bin_edges (N, n_bins + 1), depth (N, H/2, W/2, 1))``; ``train()``/``eval()`` switch dropout
and BatchNorm.
"""

from flax import nnx
import jax.numpy as jnp
import numpy as np


class TinyDepthModel(nnx.Module):
  """Conv (stride 2) + BatchNorm + Dropout, a global-pool bins head and a bins-weighted depth."""

  def __init__(self, n_bins=4, min_depth=1e-3, max_depth=10.0, *, rngs: nnx.Rngs):
    self.min_depth, self.max_depth = min_depth, max_depth
    # No bias before BatchNorm: its gradient is pure rounding noise, which Adam amplifies.
    self.encoder = nnx.Conv(3, 8, (3, 3), strides=2, use_bias=False, rngs=rngs)
    self.decoder = nnx.BatchNorm(8, rngs=rngs)
    self.dropout = nnx.Dropout(0.2, rngs=rngs)
    self.head = nnx.Linear(8, n_bins, rngs=rngs)
    self.logits = nnx.Conv(8, n_bins, (1, 1), rngs=rngs)

  def __call__(self, images):
    x = nnx.relu(self.decoder(self.encoder(images)))
    x = self.dropout(x)
    widths = nnx.relu(self.head(x.mean(axis=(1, 2)))) + 0.1
    widths = widths / widths.sum(-1, keepdims=True) * (self.max_depth - self.min_depth)
    edges = jnp.concatenate(
        [jnp.full_like(widths[:, :1], self.min_depth),
         self.min_depth + jnp.cumsum(widths, axis=-1)], axis=-1)
    centres = 0.5 * (edges[:, 1:] + edges[:, :-1])
    probs = nnx.softmax(self.logits(x), axis=-1)
    depth = jnp.einsum('nhwk,nk->nhw', probs, centres)[..., None]
    return edges, depth


def synthetic_batch(batch_size=4, height=16, width=16, seed=0):
  """A normalised-image / depth batch with some invalid (zero) depth pixels."""
  rs = np.random.RandomState(seed)
  image = rs.normal(size=(batch_size, height, width, 3)).astype(np.float32)
  depth = rs.uniform(0.5, 8.0, size=(batch_size, height, width, 1)).astype(np.float32)
  depth[:, :2] = 0.0
  return {'image': image, 'depth': depth}


def tiny_rooms_config(out: str, num_steps: int, **train_fields):
  """The smoke model on the 16 + 8 frame synthetic_rooms/tiny split (built under ``out``),
  with 48x64 crops, global batch 4 and no evaluation during training; ``train_fields``
  override ``config.train``. Used by the child processes of test_train and test_multihost.
  """
  # pylint: disable-next=g-import-not-at-top
  from adabins_jax.configs import smoke
  config = smoke.get_config()
  config.data.dataset = 'synthetic_rooms/tiny'
  config.data.tfds_data_dir = f'{out}/tfds'
  config.data.crop_white_border = False
  config.data.crop_size = (48, 64)
  config.eval.crop = 'none'
  config.eval.batch_size = 4
  config.train.batch_size = 4
  config.train.num_steps = num_steps
  config.train.checkpoint_every_steps = 2
  config.train.eval_every_steps = 0
  config.train.update(train_fields)
  return config


def save_torch_weights(model: nnx.Module, path) -> str:
  """Writes ``model``'s weights as a release-style PyTorch state dict; returns the path."""
  import torch  # Only the tests that call this need torch; they skip without it.
  from adabins_jax.torch_weights import mapping as torch_mapping
  state = torch_mapping.model_to_state_dict(model)
  torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, path)
  return str(path)


def save_run(workdir, model: nnx.Module, step: int = 1):
  """Makes ``workdir`` a training run holding one checkpoint of ``model`` at ``step``."""
  import optax
  from adabins_jax import checkpointing
  manager = checkpointing.create_manager(workdir)
  checkpointing.save(manager, step, model, nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param),
                     force=True)
  checkpointing.finish(manager)
  manager.close()
  return workdir
