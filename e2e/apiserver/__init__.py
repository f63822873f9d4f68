"""A local, in-memory Kubernetes API server used as test and demo infrastructure.

It speaks the real Kubernetes REST protocol (discovery, OpenAPI, CRUD, watch,
patch, server-side apply, RBAC) well enough that the real kubectl and the
Tailor operator can be tested against it.  See docs/apiserver.md.
"""
