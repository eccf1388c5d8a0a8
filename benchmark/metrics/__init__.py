"""Evaluation metrics: re-ID ranking (CMC, mAP) and image quality (SSIM, PSNR, LPIPS).

``ranking`` holds the fast evaluator, ``reference`` a slow per-query loop used to check it,
``quality`` the image-quality metrics (scikit-image and ``lpips`` are imported on first use).
"""

from .quality import (
    LPIPSUnavailable,
    QualityScores,
    image_quality,
    lpips_distance,
    psnr,
    ssim,
)
from .ranking import (
    RankingResult,
    evaluate_features,
    evaluate_ranking,
    pairwise_distance,
    single_shot_priorities,
)

__all__ = [
    "RankingResult",
    "evaluate_features",
    "evaluate_ranking",
    "pairwise_distance",
    "single_shot_priorities",
    "QualityScores",
    "LPIPSUnavailable",
    "ssim",
    "psnr",
    "lpips_distance",
    "image_quality",
]
