"""The animatable human NeRF (PoseGen's renderer), and casts of subjects sharing its geometry."""

from posegen_env.render.avatar.cast import CastRenderer, CastSubject, load_cast, save_cast
from posegen_env.render.avatar.checkpoint import DEFAULT_AVATAR_PATH, AvatarError, load_avatar, save_avatar
from posegen_env.render.avatar.renderer import AvatarRender, AvatarRenderer

__all__ = ["DEFAULT_AVATAR_PATH", "AvatarError", "AvatarRender", "AvatarRenderer", "CastRenderer", "CastSubject",
           "load_avatar", "load_cast", "save_avatar", "save_cast"]
