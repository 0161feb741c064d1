"""The ground-truth renderer: the body mesh ray-cast with Embree, in procedural clothes.

It renders the synthetic captures avatars are fitted on, of any subject (``Outfit``), and checks
that what the avatar teaches carries over to the real body.
"""

from posegen_env.render.mesh.appearance import Outfit, ProceduralAppearance
from posegen_env.render.mesh.renderer import MeshRenderer

__all__ = ["MeshRenderer", "Outfit", "ProceduralAppearance"]
