"""The animatable human NeRF (PoseGen's renderer)."""

from posegen_env.render.avatar.checkpoint import DEFAULT_AVATAR_PATH, AvatarError, load_avatar, save_avatar
from posegen_env.render.avatar.renderer import AvatarRender, AvatarRenderer

__all__ = ["DEFAULT_AVATAR_PATH", "AvatarError", "AvatarRender", "AvatarRenderer", "load_avatar", "save_avatar"]
