"""Published results of the shipped configs: the one place that holds them.

Two sources, under the evaluation protocol of ``metrics.py``: the AdaBins paper (the
EfficientNet-B5 model, on NYU Depth V2's official test split, on KITTI's Eigen split, and its NYU
model on SUN RGB-D's test split without fine-tuning) and the
variant study of five smaller models on NYU, which also timed every NYU model, the paper's
included. docs/reference.md describes both. ``REFERENCE`` is keyed by config name; a config
names its row in ``config.eval.reference``. The evaluation report (``evaluate.write_report``), the benchmark table
(benchmark.py) and the tests read it from here.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses

PAPER = 'paper'
VARIANT_STUDY = 'variant study'


@dataclasses.dataclass(frozen=True)
class Reference:
  """One model's published results.

  Attributes:
    model: The model's name in the tables of docs/reference.md.
    bins: Its number of adaptive bins.
    source: Where ``metrics`` come from: ``PAPER`` or ``VARIANT_STUDY``.
    metrics: Metric means keyed by ``metrics.METRIC_NAMES``; only the published ones.
    fps: Images per second in the variant study, on an NVIDIA RTX 2070 Super (None: not timed).
    size_mb: The variant study's model size in decimal MB, which matches a training checkpoint
      (float32 parameters plus AdamW's two moments, about 12 bytes per parameter); None where
      the study did not list the model.
  """
  model: str
  bins: int
  source: str
  metrics: Mapping[str, float]
  fps: float | None = None
  size_mb: float | None = None


REFERENCE: dict[str, Reference] = {
    'effnet_b5_256': Reference(
        'EfficientNet-B5 (paper)', 256, PAPER,
        dict(d1=0.903, d2=0.984, d3=0.997, abs_rel=0.103, rmse=0.364, log10=0.044),
        fps=11.53, size_mb=940.0),
    'effnet_b0_256': Reference('EfficientNet-B0', 256, VARIANT_STUDY,
                               dict(d1=0.836, d2=0.974, d3=0.995), fps=18.20, size_mb=326.0),
    'unet256': Reference('U-Net', 256, VARIANT_STUDY,
                         dict(d1=0.721, d2=0.932, d3=0.984), fps=27.04, size_mb=131.0),
    'unet128': Reference('U-Net', 128, VARIANT_STUDY,
                         dict(d1=0.728, d2=0.936, d3=0.983), fps=34.84, size_mb=130.0),
    'unet128_dws': Reference('U-Net, depthwise separable', 128, VARIANT_STUDY,
                             dict(d1=0.689, d2=0.919, d3=0.981), fps=34.85, size_mb=78.0),
    'unet128_dws_75': Reference('U-Net, depthwise sep., 75% input', 128, VARIANT_STUDY,
                                dict(d1=0.298, d2=0.627, d3=0.847), fps=52.3, size_mb=55.9),
    # KITTI, Eigen split, Garg crop, up to 80 m; the study timed NYU models only.
    'kitti_effnet_b5_256': Reference(
        'EfficientNet-B5 (paper, KITTI)', 256, PAPER,
        dict(d1=0.964, d2=0.995, d3=0.999, abs_rel=0.058, sq_rel=0.190, rmse=2.360,
             rmse_log=0.088)),
    # The NYU model on SUN RGB-D's official test split, no fine-tuning (the paper's Table 5).
    'sun_rgbd_effnet_b5_256': Reference(
        'EfficientNet-B5 (paper, NYU model on SUN RGB-D)', 256, PAPER,
        dict(d1=0.771, d2=0.944, d3=0.983, abs_rel=0.159, rmse=0.476, log10=0.068)),
}

