"""The network: an SE(3)-equivariant IPA network on the world state and the learned generator
F_t^θ built on it (x̂_1 parametrisation).

Owns: ipa, model. May import: geometry and method.generator (the generator parameter records);
never method.process or method.loss — the network sees (t, x_t) only.
"""
