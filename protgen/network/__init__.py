"""The network: an SE(3)-equivariant IPA network on the world state and the learned generator
F_t^θ built on it (x̂_1 parametrisation).

Owns: config (NetworkConfig, the presets), neighbours (the sparse pair list), pairs (pair
features, slabs), attention (IPA), block, gap_head, frame_network (the network), model.
May import: geometry, method (method.generator only, the generator parameter records; never a
process or the loss: the network sees t and x_t only).
"""
