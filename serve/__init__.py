"""Local stand-in for the SageMaker scikit-learn serving container (``make serve``).

It stages a model package the way SageMaker unpacks ``model.tar.gz`` into ``/opt/ml/model``, loads
``code/inference.py`` the way the container does, and answers ``GET /ping`` and ``POST /invocations``
with the container's semantics (hook exceptions are 500s; a response object's status passes through).
"""
