"""benchmarks/host_memory.py: our step with main's malloc settings against glibc's defaults."""

import functools
import json
import pathlib
import sys

from helpers import benchmark_scripts

from adabins_jax import host_memory


def test_settings_alternate_each_in_its_own_environment(monkeypatch, capsys):
  module = benchmark_scripts.load('host_memory')
  monkeypatch.setattr(module.host_memory, 'tuned_environ', functools.partial(
      host_memory.tuned_environ, libc='glibc', accelerator_plugin=False))
  monkeypatch.setenv('MALLOC_ARENA_MAX', '8')  # The caller's own setting: not carried over.
  step = {'tuned': 8.0, 'default': 10.0}
  runs = []

  def fake_run(command, check, stdout, env):
    del check, stdout
    setting = env.get('ADABINS_JAX_MALLOC')
    runs.append((setting, env.get('MALLOC_ARENA_MAX'), env.get('MALLOC_MMAP_MAX_')))
    repeats = int(next(a for a in command if a.startswith('--repeats=')).split('=')[1])
    out = pathlib.Path(next(a for a in command if a.startswith('--child_output=')).split('=')[1])
    out.write_text(json.dumps({
        'times': [step[setting]] * repeats, 'peak_rss': 7.7e9 if setting == 'tuned' else 8.2e9,
        'page_faults_per_step': 0 if setting == 'tuned' else 1_100_000}))

  monkeypatch.setattr(module.subprocess, 'run', fake_run)
  monkeypatch.setattr(sys, 'argv', ['host_memory.py', '--rounds=2'])
  module.main()
  assert runs == [('default', None, None)] + [('tuned', '1', '0'), ('default', None, None)] * 2
  out = capsys.readouterr().out
  assert '| tuned | 8.00 | 0.80x | 7.7 | 0 |' in out
  assert '| default | 10.00 | 1.00x | 8.2 | 1,100,000 |' in out
