"""The render layer: cameras, and the two renderers of a posed body -- the avatar NeRF and the mesh.

``camera`` is the one camera convention (``Camera``, orbit ``CameraParams``); ``crops`` renders
labelled person crops with any renderer; ``avatar`` is the animatable human NeRF and its fitting;
``mesh`` is the ground-truth ray-cast mesh renderer with procedural clothes.
"""

from posegen_env.render.avatar import (
    AvatarError,
    AvatarRender,
    AvatarRenderer,
    CastRenderer,
    CastSubject,
    load_avatar,
    load_cast,
    save_avatar,
    save_cast,
)
from posegen_env.render.backgrounds import BackgroundError, Backgrounds, ImageFolderBackgrounds
from posegen_env.render.camera import (
    REFERENCE_WIDTH,
    Camera,
    CameraParams,
    focal_from_fov,
    orbit_camera,
    person_crop_box,
)
from posegen_env.render.crops import render_crops
from posegen_env.render.mesh import MeshRenderer, Outfit, ProceduralAppearance
from posegen_env.render.step import PoseBatch

__all__ = [
    "AvatarError",
    "AvatarRender",
    "AvatarRenderer",
    "BackgroundError",
    "Backgrounds",
    "Camera",
    "CameraParams",
    "CastRenderer",
    "CastSubject",
    "ImageFolderBackgrounds",
    "MeshRenderer",
    "Outfit",
    "PoseBatch",
    "ProceduralAppearance",
    "REFERENCE_WIDTH",
    "focal_from_fov",
    "load_avatar",
    "load_cast",
    "orbit_camera",
    "person_crop_box",
    "render_crops",
    "save_avatar",
    "save_cast",
]
