"""Writing an explanation's heatmaps: overlay, heatmap, raw map and the dense-block grid."""

from __future__ import annotations

from pathlib import Path

from model import __version__
from model.cam import METHODS
from model.errors import ExportError
from model.explain import Explanation, LayerClassMap
from model.export import OutputNames, export_stem, method_slug, safe_component, save_npy, save_png
from model.render import grid, heatmap_image, overlay, raw_to_uint16


def map_metadata(explanation: Explanation, m: LayerClassMap, model_name: str, extra: dict | None = None) -> dict:
    """What a PNG's text chunks record about how it was made."""
    return {
        "Software": f"DenseLens {__version__}",
        "denselens:model": model_name,
        "denselens:layer": m.layer,
        "denselens:method": explanation.method,
        "denselens:class_index": m.class_index,
        "denselens:label": m.label,
        "denselens:score": f"{m.score:.6g}",
        "denselens:probability": f"{m.probability:.6g}",
        "denselens:preprocess": m.geometry.mode,
        **(extra or {}),
    }


def export_map(explanation: Explanation, m: LayerClassMap, out_dir: str | Path, model_name: str,
               kinds: tuple[str, ...] = ("overlay", "heatmap"), colormap: str = "jet", alpha: float = 0.5,
               overwrite: bool = False, taken: OutputNames | None = None) -> dict[str, list[str]]:
    """Write the chosen kinds for one map; returns {kind: [paths]}.

    An empty or invalid map gets no overlay or heatmap (a blank or fully red
    picture would mislead); its raw map is still written when asked.  ``taken``
    holds the files written earlier in the same run: they are never replaced.
    """
    out_dir = Path(out_dir)
    loaded = explanation.prepared.loaded
    stem = export_stem(loaded.path.stem if loaded.path else "image", m.class_index, m.label, m.layer,
                       explanation.method)
    meta = map_metadata(explanation, m, model_name, {"denselens:colormap": colormap, "denselens:alpha": alpha})
    written: dict[str, list[str]] = {}
    if m.ok and ("overlay" in kinds or "heatmap" in kinds):
        heat = m.on_original()
        image = loaded.image
        if image.size != m.geometry.original_size:
            raise ExportError("the image was decoded at reduced size; reload it at full size to export")
        if "overlay" in kinds:
            path = save_png(overlay(image, heat, alpha, colormap, m.geometry), out_dir / f"{stem}_overlay.png",
                            meta, overwrite, taken)
            written["overlay"] = [str(path)]
        if "heatmap" in kinds:
            path = save_png(heatmap_image(heat, colormap, m.geometry), out_dir / f"{stem}_heatmap.png",
                            meta, overwrite, taken)
            written["heatmap"] = [str(path)]
    if "raw" in kinds:
        arr16, top = raw_to_uint16(m.raw)
        from PIL import Image

        raw_meta = {**meta, "denselens:raw_max": f"{top:.9g}",
                    "denselens:raw_note": "pixel/65535*raw_max = map value after ReLU"}
        npy = save_npy(m.raw, out_dir / f"{stem}_raw.npy", overwrite, taken)
        png = save_png(Image.fromarray(arr16), out_dir / f"{stem}_raw16.png", raw_meta, overwrite, taken)
        written["raw"] = [str(npy), str(png)]
    return written


def export_block_grid(explanation: Explanation, class_index: int, out_dir: str | Path, model_name: str,
                      colormap: str = "jet", alpha: float = 0.5, overwrite: bool = False,
                      taken: OutputNames | None = None) -> str | None:
    """Side-by-side overlays of every dense block explained for ``class_index``; None if fewer than 2."""
    maps = [m for m in explanation.maps if m.class_index == class_index and m.layer.startswith("denseblock")]
    if len(maps) < 2:
        return None
    image = explanation.prepared.loaded.image
    tiles = []
    for m in sorted(maps, key=lambda m: m.layer):
        tile = overlay(image, m.on_original(), alpha if m.ok else 0.0, colormap, m.geometry)
        tiles.append((m.layer if m.ok else f"{m.layer} (no evidence)", tile))
    first = maps[0]
    method = METHODS.get(explanation.method)
    title = f"{first.label} ({first.probability * 100:.1f}%)  ·  {method.title if method else explanation.method}"
    loaded = explanation.prepared.loaded
    stem = "_".join([safe_component(loaded.path.stem if loaded.path else "image"),
                     f"{class_index}-{safe_component(first.label, 40)}", "blocks",
                     method_slug(explanation.method)])
    meta = map_metadata(explanation, first, model_name, {"denselens:layer": ",".join(m.layer for m in maps)})
    return str(save_png(grid(tiles, title=title), Path(out_dir) / f"{stem}_grid.png", meta, overwrite,
                        taken))
