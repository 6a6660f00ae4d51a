"""benchmarks/host_memory.py: our step as main runs it against glibc's malloc defaults."""

import functools
import json
import pathlib
import sys

import pytest

from helpers import benchmark_scripts

from adabins_jax import host_memory


@pytest.mark.parametrize('cold', [False, True])
def test_settings_alternate_each_in_its_own_environment(monkeypatch, capsys, cold):
  module = benchmark_scripts.load('host_memory')
  monkeypatch.setattr(module.host_memory, 'applies',
                      functools.partial(host_memory.applies, libc='glibc'))
  monkeypatch.setenv('MALLOC_ARENA_MAX', '8')  # The caller's own setting: not carried over.
  step, compile_s = {'tuned': 8.0, 'default': 10.0}, {'tuned': 84.0, 'default': 65.0}
  runs = []

  def fake_run(command, check, stdout, env):
    del check, stdout
    setting = env.get('ADABINS_JAX_MALLOC', 'default')
    cache = next(a for a in command if a.startswith('--compilation_cache_dir=')).split('=')[1]
    runs.append((setting, env.get('MALLOC_ARENA_MAX'), pathlib.Path(cache).name))
    repeats = int(next(a for a in command if a.startswith('--repeats=')).split('=')[1])
    out = pathlib.Path(next(a for a in command if a.startswith('--child_output=')).split('=')[1])
    out.write_text(json.dumps({
        'times': [step[setting]] * repeats, 'compile_s': compile_s[setting],
        'peak_rss': 7.7e9 if setting == 'tuned' else 8.2e9,
        'page_faults_per_step': 0 if setting == 'tuned' else 1_100_000}))

  monkeypatch.setattr(module.subprocess, 'run', fake_run)
  monkeypatch.setattr(sys, 'argv', ['host_memory.py', '--rounds=2'] + (['--cold'] if cold else []))
  module.main()
  if cold:  # An empty cache per process, nothing filled first.
    assert runs == [('tuned', None, 'xla-tuned0'), ('default', None, 'xla-default0'),
                    ('tuned', None, 'xla-tuned1'), ('default', None, 'xla-default1')]
  else:  # One cache, filled first under glibc's defaults.
    assert runs == [('default', None, 'xla')] + [('tuned', None, 'xla'),
                                                 ('default', None, 'xla')] * 2
  out = capsys.readouterr().out
  assert '| tuned | 8.00 | 0.80x | 84.0, 84.0 | 7.7 | 0 |' in out
  assert '| default | 10.00 | 1.00x | 65.0, 65.0 | 8.2 | 1,100,000 |' in out


def test_a_machine_where_the_settings_do_not_apply_is_refused(monkeypatch):
  module = benchmark_scripts.load('host_memory')
  monkeypatch.setattr(module.host_memory, 'applies', lambda environ: False)  # Not glibc.
  monkeypatch.setattr(module.subprocess, 'run', pytest.fail)
  monkeypatch.setattr(sys, 'argv', ['host_memory.py', '--cold'])
  with pytest.raises(SystemExit, match='does not apply'):
    module.main()
