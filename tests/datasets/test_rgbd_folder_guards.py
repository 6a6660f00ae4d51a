"""Tests that an RGB-D file list with a bad focal length or a repeated frame is refused."""

from etils import epath
import pytest

from adabins_jax.datasets import depth_builder
from adabins_jax.datasets import rgbd_folder


def _list(tmp_path, *lines):
  for name in ('a.png', 'a_depth.png', 'b.png', 'b_depth.png'):
    (tmp_path / name).write_bytes(b'')
  path = tmp_path / 'train.txt'
  path.write_text('\n'.join(('# rgb depth focal', *lines)) + '\n')
  return epath.Path(path)


@pytest.mark.parametrize('focal', ['nan', '-518.8', '0', 'inf'])
def test_a_focal_length_that_is_not_positive_is_refused_with_its_line(tmp_path, focal):
  path = _list(tmp_path, 'a.png a_depth.png 518.8', f'b.png b_depth.png {focal}')
  with pytest.raises(ValueError, match=rf'train.txt:3: the focal length {focal!r} must be a '
                                       'positive number'):
    rgbd_folder.read_file_list(path, default_focal=500.0)
  with pytest.raises(ValueError, match='train.txt:3: the focal length'):
    depth_builder.read_file_list(path)  # The NYU and KITTI lists' parser too.


def test_a_frame_listed_twice_is_refused_with_both_lines(tmp_path):
  path = _list(tmp_path, 'a.png a_depth.png', 'b.png b_depth.png', 'a.png a_depth.png')
  with pytest.raises(ValueError, match=r'train.txt:4: a.png is listed again \(first at line 2\)'):
    rgbd_folder.read_file_list(path, default_focal=500.0)


def test_a_good_list_still_reads(tmp_path):
  path = _list(tmp_path, 'a.png a_depth.png 518.8', 'b.png b_depth.png')
  frames = rgbd_folder.read_file_list(path, default_focal=500.0)
  assert [f.focal for f in frames] == [518.8, 500.0]
