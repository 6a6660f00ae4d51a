"""notebooks/colab.ipynb runs from start to end in its quick mode and shows its two pictures."""

import base64
import io
import pathlib

import nbclient
import nbformat
import numpy as np
from PIL import Image
import pytest

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / 'notebooks' / 'colab.ipynb'
# The quick mode's sizes: synthetic_rooms/tiny frames, and the room the notebook renders.
TINY_FRAME_W = 80
ROOM_W = 160


def _cell(notebook, tag):
  tagged = [c for c in notebook.cells if tag in c.metadata.get('tags', [])]
  assert len(tagged) == 1, f'one cell tagged {tag!r} expected, found {len(tagged)}'
  return tagged[0]


def _pictures(cell):
  """The PNG pictures a cell displayed, as arrays."""
  return [np.asarray(Image.open(io.BytesIO(base64.b64decode(out['data']['image/png']))))
          for out in cell.outputs if 'image/png' in out.get('data', {})]


def test_notebook_has_no_stored_outputs():
  # Outputs would show a stale run on Colab, and bloat the repository.
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(notebook)
  assert all(not c.get('outputs') for c in notebook.cells if c.cell_type == 'code')


@pytest.mark.slow  # Trains a tiny model in a subprocess: about a minute on an idle 2-core CPU.
def test_quick_run_trains_evaluates_and_shows_the_strip_and_the_depth(tmp_path, monkeypatch):
  monkeypatch.setenv('ADABINS_NOTEBOOK_QUICK', '1')
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  # The kernel is this interpreter (jupyter_client runs 'python' kernels with sys.executable),
  # where adabins_jax is importable, so the install cell installs nothing.
  client = nbclient.NotebookClient(notebook, timeout=300, kernel_name='python3',
                                   resources={'metadata': {'path': str(tmp_path)}})
  client.execute()  # Raises CellExecutionError, naming the cell, if any cell raises.
  errors = [out for c in notebook.cells for out in c.get('outputs', [])
            if out.output_type == 'error']
  assert not errors
  install_log = ''.join(out.get('text', '') for out in _cell(notebook, 'install').outputs)
  assert 'installed already' in install_log
  strips = _pictures(_cell(notebook, 'eval-strip'))
  depths = _pictures(_cell(notebook, 'depth'))
  assert len(strips) == 1 and len(depths) == 1
  # Four panels of tiny frames with titles and bars around; the room's coloured depth at the
  # photo's own size (Prediction.colorized).
  assert strips[0].shape[1] == 4 * TINY_FRAME_W and strips[0].shape[0] > TINY_FRAME_W
  assert depths[0].shape[:2] == (120, ROOM_W)
  assert (tmp_path / 'runs' / 'demo_quick' / 'checkpoints').is_dir()
