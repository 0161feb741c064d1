"""The render layer: cameras, and the two renderers of a posed body -- the avatar NeRF and the mesh.

``camera`` is the one camera convention (``Camera``, orbit ``CameraParams``); ``crops`` renders
labelled person crops with any renderer; ``avatar`` is the animatable human NeRF and its fitting;
``mesh`` is the ground-truth ray-cast mesh renderer with procedural clothes.
"""

from posegen_env.render.avatar import AvatarError, AvatarRender, AvatarRenderer, load_avatar, save_avatar
from posegen_env.render.camera import (
    REFERENCE_WIDTH,
    Camera,
    CameraParams,
    focal_from_fov,
    orbit_camera,
    person_crop_box,
)
from posegen_env.render.crops import PoseBatch, render_crops
from posegen_env.render.mesh import MeshRenderer, ProceduralAppearance

__all__ = [
    "AvatarError",
    "AvatarRender",
    "AvatarRenderer",
    "Camera",
    "CameraParams",
    "MeshRenderer",
    "PoseBatch",
    "ProceduralAppearance",
    "REFERENCE_WIDTH",
    "focal_from_fov",
    "load_avatar",
    "orbit_camera",
    "person_crop_box",
    "render_crops",
    "save_avatar",
]
