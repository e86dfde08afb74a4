"""Names the app offers (methods, colormaps, models, modes), importable without torch.

The GUI builds its menus from these before torch has finished importing.
"""

from __future__ import annotations

METHODS = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "scorecam")
METHOD_TITLES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "xgradcam": "XGrad-CAM",
                 "layercam": "LayerCAM", "hirescam": "HiResCAM", "scorecam": "Score-CAM"}
COLORMAPS = ("jet", "turbo", "inferno", "viridis", "grey")
PREPROCESS_MODES = ("full", "center-crop")
IMAGENET_MODELS = ("densenet121", "densenet169", "densenet201", "densenet161")
MODEL_TITLES = {"densenet121": "DenseNet-121 (ImageNet)", "densenet169": "DenseNet-169 (ImageNet)",
                "densenet201": "DenseNet-201 (ImageNet)", "densenet161": "DenseNet-161 (ImageNet)",
                "demo": "Demo model (shapes, bundled)"}
