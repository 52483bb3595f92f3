"""The spec's sections, one module each; ``framework.spec.schema`` puts them together as ``Spec``.

base: StrictModel, TypedTable and shared helpers and constants; data, model, train, augmentation, regularization,
tune, privacy, distill, distribute, track: each section's tables; generative: [model]'s keys for a VAE or
GAN; synthetic: data.synthetic. The modules declare fields and call the named resolvers
of ``framework.spec.resolve`` for anything on disk or in the registry; rules across sections are in
``framework.spec.checks``. (Nothing is imported here, so that ``framework.spec.resolve`` can import ``base``.)
"""
