# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# Paired with plugins/module_utils/_args.py (AUTH_ARG_SPEC, HELM_ARG_SPEC, RELEASE_ARG_SPEC).


class ModuleDocFragment:
    # Cluster authentication, with kubernetes.core's names and K8S_AUTH_* fallbacks.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig itself as a dictionary.
      - Defaults to E(KUBECONFIG), then C(~/.kube/config), then the in-cluster service account.
      - helm and the Kubernetes client always use the same kubeconfig. When O(host), O(api_key),
        O(ca_cert) or O(validate_certs=false) override it, or it is a dictionary, a temporary copy
        with mode C(0600) is written and removed when the task ends.
      - Can also be set with E(K8S_AUTH_KUBECONFIG).
    type: raw
    aliases: [kubeconfig_path]
  context:
    description:
      - The kubeconfig context to use. Can also be set with E(K8S_AUTH_CONTEXT).
    type: str
    aliases: [kube_context]
  host:
    description:
      - The Kubernetes API server URL. Can also be set with E(K8S_AUTH_HOST).
    type: str
  api_key:
    description:
      - A bearer token for the API server. Never appears in argv, results or logs.
      - Can also be set with E(K8S_AUTH_API_KEY).
    type: str
  ca_cert:
    description:
      - Path to a CA certificate that signs the API server's certificate.
      - Can also be set with E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  validate_certs:
    description:
      - Set to V(false) to skip verifying the API server's certificate. Can also be set with E(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
"""

    # The helm binary and the release every module works on.
    HELM = r"""
options:
  binary_path:
    description:
      - Path to the helm binary, helm 3.13 or later, or helm 4. Defaults to C(helm) on E(PATH).
      - The major version is detected once per task and chooses every version-dependent flag.
    type: path
  name:
    description:
      - The release name.
    type: str
    required: true
    aliases: [release_name]
  namespace:
    description:
      - The namespace of the release.
    type: str
    required: true
    aliases: [release_namespace]
requirements:
  - helm 3.13+ or helm 4 on the host that runs the module
  - kubernetes (Python library) on the host that runs the module
"""

    # The helm binary alone, for a module with no release of its own (helm_releases).
    HELM_BINARY = r"""
options:
  binary_path:
    description:
      - Path to the helm binary, helm 3.13 or later, or helm 4. Defaults to C(helm) on E(PATH).
      - The major version is detected once per binary and chooses every version-dependent flag.
    type: path
requirements:
  - helm 3.13+ or helm 4 on the host that runs the module
  - kubernetes (Python library) on the host that runs the module
"""

    # What decides the rendered release, shared by helm_deploy and helm_preflight.
    # Paired with CHART_ARG_SPEC in plugins/module_utils/_args.py.
    CHART = r"""
options:
  chart_ref:
    description:
      - The chart, as helm takes it. A local chart directory, a packaged C(.tgz), a chart URL,
        an C(oci://) reference, or C(repo/name) for a repository helm knows, or a chart name with
        O(chart_repo_url).
      - Required by M(ai_mesh.helm_engine.helm_preflight), and by M(ai_mesh.helm_engine.helm_deploy) with
        O(ai_mesh.helm_engine.helm_deploy#module:state=present).
    type: path
  chart_repo_url:
    description:
      - The URL of the chart repository that holds O(chart_ref) (helm C(--repo)).
    type: str
  chart_version:
    description:
      - The chart version (helm C(--version)); a constraint like C(^1.2) is allowed. Defaults to the latest.
      - For an C(oci://) chart it names a tag; a constraint is matched against the repository's
        tags. A version or constraint that no tag matches fails with C(error.kind=chart_not_found).
    type: str
  chart_repo_username:
    description:
      - The user name for the OCI registry of an C(oci://) O(chart_ref). Requires O(chart_repo_password).
      - With these, helm reads the credentials from a temporary registry config with mode C(0600)
        (helm C(--registry-config)), removed when the task ends; helm's own registry logins are
        not used. Without them, helm uses what C(helm registry login) stored.
      - Only for C(oci://) charts; for a chart repository with basic auth, add it with
        C(helm repo add --password-stdin) and use C(chart_ref=<repo>/<chart>).
      - Wrong credentials fail with C(error.kind=unauthorized).
    type: str
    aliases: [repo_username]
  chart_repo_password:
    description:
      - The password (or token) for O(chart_repo_username). It never appears in argv, results,
        diffs or logs.
    type: str
    aliases: [repo_password]
  chart_ca_cert:
    description:
      - A CA bundle that verifies the certificate of the OCI registry or chart repository
        (helm C(--ca-file)).
    type: path
  release_values:
    description:
      - Values for the release, as a dictionary. They win over O(values_files) and lose to O(set_values).
      - Values, from any option, may nest mappings and lists at most 100 levels deep.
      - Written to a C(0600) temporary file that is removed when the task ends.
    type: dict
    default: {}
    aliases: [values]
  values_files:
    description:
      - Values files on the host that runs the module, applied in order (later files win).
    type: list
    elements: str
    default: []
  set_values:
    description:
      - Values as helm C(--set) expressions, applied last. Their values are redacted wherever the
        command is echoed; prefer O(release_values) for secrets, which never reach the command line.
      - Each expression is checked by helm 3's C(--set) rules before helm runs, with either helm
        major. One that helm 3 refuses (an unclosed index such as C(a[=x)) fails with
        C(invalid_values) rather than being installed by helm 4.
    type: list
    elements: dict
    default: []
    suboptions:
      value:
        description: The expression, C(key=value); for V(file), C(key=path).
        type: str
        required: true
      value_type:
        description: V(raw) is C(--set), V(string) C(--set-string), V(json) C(--set-json),
          V(file) C(--set-file), V(literal) C(--set-literal).
        type: str
        choices: [raw, string, json, file, literal]
        default: raw
  create_namespace:
    description: Create the namespace if it does not exist.
    type: bool
    default: false
  skip_crds:
    description: Do not install the chart's CRDs.
    type: bool
    default: false
  skip_schema_validation:
    description: Do not validate the values against the chart's C(values.schema.json) (helm C(--skip-schema-validation)).
    type: bool
    default: false
  dependency_update:
    description: Update the chart's dependencies before installing (helm C(--dependency-update)).
    type: bool
    default: false
    aliases: [dep_up]
  plain_http:
    description: Reach an OCI registry over plain HTTP (helm C(--plain-http)).
    type: bool
    default: false
  insecure_skip_tls_verify:
    description: Do not verify the TLS certificate of the chart repository or registry (helm C(--insecure-skip-tls-verify)).
    type: bool
    default: false
    aliases: [skip_tls_certs_check]
  post_renderer:
    description:
      - Pass the rendered manifests through this post-renderer (helm C(--post-renderer)); on helm 4
        it names a post-renderer plugin, on helm 3 an executable.
      - The dry run that decides and the real run both use it, so check mode (and M(ai_mesh.helm_engine.helm_preflight)) sees its output.
    type: str
  take_ownership:
    description:
      - Adopt existing resources that this release does not own yet (helm C(--take-ownership)),
        for example what C(kubectl apply) created before the release existed.
      - M(ai_mesh.helm_engine.helm_preflight) then lists them under C(adoptable) instead of
        reporting each as a C(resource_conflict) problem.
    type: bool
    default: false
"""

    # Shared results and errors.
    RESULTS = r"""
options: {}
notes:
  - Every failure returns C(error.kind), a stable identifier to match on, with the message in
    C(error.message) and, when helm failed, helm's stderr in C(error.stderr). The kinds are
    V(invalid_arguments), V(invalid_values), V(kubeconfig_invalid), V(chart_not_found),
    V(chart_invalid), V(registry_unreachable), V(render_failed), V(cluster_unreachable),
    V(unauthorized), V(forbidden), V(kubernetes_api_error), V(resource_conflict),
    V(release_locked), V(release_not_found), V(revision_not_found), V(hook_failed), V(timeout),
    V(helm_missing), V(helm_unsupported), V(helm_failed), V(helm_output_invalid),
    V(missing_dependency) and V(internal_error); the README explains each.
  - Every input is checked before helm runs or the cluster is touched; a rejected input
    changes nothing. C(changed) is true only when the cluster changed, failures included.
"""

    # Stuck releases, shared by helm_deploy and helm_rollback.
    RECOVERY = r"""
options:
  recover_pending:
    description:
      - When the release's latest revision is C(pending-install), C(pending-upgrade) or
        C(pending-rollback) and stale (see O(stale_pending_after)), unlock it before the requested
        operation. A never-deployed C(pending-install) is uninstalled, anything else is rolled
        back to the last successful revision. The result's C(recovery) says what was done.
      - A pending revision that is not stale fails with C(error.kind=release_locked), because
        another helm may still be working on it.
    type: bool
    default: true
  stale_pending_after:
    description:
      - How old a pending revision must be to count as stale, as a Go duration (V(10m)) or a
        number of seconds. Defaults to the task's O(timeout) (or helm's 5 minutes) plus 60 seconds.
    type: raw
  lock_wait:
    description:
      - How long to wait, in all, for the release's lock to be free (another run of
        M(ai_mesh.helm_engine.helm_deploy) or M(ai_mesh.helm_engine.helm_rollback) holds it) and
        for a pending revision to finish or become stale, before failing with
        C(release_locked), as a Go duration or seconds. V(0) fails at once.
    type: raw
    default: 0
notes:
  - One run at a time per release. The module holds the Lease C(helm-engine.<name>)
    (coordination.k8s.io/v1) in the release's namespace from before any recovery to the end of
    the operation, renews it while helm runs, and deletes it at the end, on failure too. Another
    run of M(ai_mesh.helm_engine.helm_deploy) or M(ai_mesh.helm_engine.helm_rollback) on the same
    release meanwhile fails at once with C(error.kind=release_locked), and C(error.lock) names
    the holder (host, process), its operation and since when it holds the lock; or it waits up
    to O(lock_wait).
  - A run that is killed leaves a lease that expires O(stale_pending_after) after its last
    renewal (at least 5 seconds); the next run then takes it over, and recovers the pending
    revision the killed run left.
  - Check mode takes no lock, but fails with C(release_locked) when another run holds it, as
    the real run would. An identity that may not read leases can still preview.
  - The identity should have C(get), C(create), C(update) and C(delete) on C(leases) of API group
    C(coordination.k8s.io) in the release's namespace. Without them (RBAC written for helm
    alone) the run goes on without the lock, with a warning; helm's own checks then refuse a
    concurrent run, as C(release_locked), once it started helm.
  - When the namespace does not exist yet (O(ai_mesh.helm_engine.helm_deploy#module:create_namespace)),
    there is nowhere to keep the lease and the run goes on without it; helm's own checks then
    refuse a concurrent run, also as C(release_locked). Plain helm and other tools do not know
    the lease; helm's pending-revision check guards against them.
"""

    # Options of operations that change a release, shared by helm_deploy and helm_rollback.
    OPERATION = r"""
options:
  wait:
    description:
      - Wait until the release's resources are ready, up to O(timeout). With
        O(ai_mesh.helm_engine.helm_deploy#module:state=absent), wait until they are gone.
    type: bool
    default: false
  wait_strategy:
    description:
      - The readiness check on helm 4 (C(--wait=...)). V(watcher) uses kstatus; V(legacy) is
        helm 3's check, which some custom resources and Deployments need. helm 3 has only V(legacy).
    type: str
    choices: [watcher, legacy]
  timeout:
    description:
      - How long helm waits for each Kubernetes operation (the wait, each hook), as a Go duration
        (V(5m), V(90s), V(1h30m)) or a number of seconds. Zero and negative durations are refused.
        helm's default is 5 minutes.
      - The helm process itself is stopped (SIGTERM, then SIGKILL 10 seconds later) when it runs
        longer than three times this plus 30 seconds, and the task fails with C(error.kind=timeout).
    type: raw
  fail_fast:
    description:
      - While helm waits, watch the release's workloads (one list per kind every 2 seconds) and
        stop helm as soon as the rollout definitely cannot succeed, instead of waiting out
        O(timeout). Definite failures are a container whose image cannot be pulled
        (C(ImagePullBackOff), C(ErrImagePull), C(InvalidImageName)) or whose configuration is
        invalid (C(CreateContainerConfigError)), a container in C(CrashLoopBackOff) that restarted
        O(fail_fast_restarts) times, a pod unschedulable for longer than O(fail_fast_grace), a Job
        past its C(backoffLimit) and a Deployment past its C(progressDeadlineSeconds). A pod that
        is merely not ready yet never counts.
      - helm gets SIGTERM, so it marks the revision failed itself and, with C(atomic), rolls back
        at once. The task fails with C(error.kind=rollout_failed) and C(error.resources), each
        failing resource with its reason, recent Warning events and the log tail of a crashing
        container, secrets redacted.
      - Unset means on whenever helm waits (O(wait), or C(atomic) in M(ai_mesh.helm_engine.helm_deploy)).
    type: bool
  fail_fast_restarts:
    description: The restart count at which a crash-looping container fails the rollout (O(fail_fast)).
    type: int
    default: 3
  fail_fast_grace:
    description:
      - How long a pod may stay unschedulable before it fails the rollout (O(fail_fast)), as a Go
        duration or seconds. A cluster autoscaler may need minutes to add a node.
    type: raw
    default: 30s
  cleanup_on_fail:
    description: Delete resources the operation created when it fails.
    type: bool
    default: false
  force:
    description: Replace resources that cannot be updated in place (C(--force) on helm 3, C(--force-replace) on helm 4).
    type: bool
    default: false
  disable_hook:
    description: Do not run the chart's hooks.
    type: bool
    default: false
    aliases: [disable_hooks]
  history_max:
    description:
      - How many revisions helm keeps for the release (helm's default is 10; 0 is no limit).
      - M(ai_mesh.helm_engine.helm_rollback) warns when its target would be pruned.
    type: int
  sensitive_values:
    description:
      - Dotted paths into the values (C(db.password), C(*) matches one level) whose leaves are
        redacted from results and diffs, in addition to keys that look secret.
    type: list
    elements: str
    default: []
"""

    # Drift of the live objects from the deployed revision, shared by helm_deploy and helm_status.
    # Paired with DRIFT_IGNORE_ARG_SPEC in plugins/module_utils/_args.py.
    DRIFT = r"""
options:
  drift_ignore:
    description:
      - Fields that are never drift. Each rule has C(paths), a list of JSON pointers into the
        object as the chart renders it (C(/spec/replicas),
        C(/spec/template/spec/containers/0/image); a pointer covers everything below it; an
        empty string the whole object), and optionally C(kind) and C(name) to narrow it to
        some objects.
      - An object annotated or labelled C(helm-engine.ai-mesh.io/drift=ignore), in the chart or
        live, is never checked.
    type: list
    elements: dict
    default: []
"""
