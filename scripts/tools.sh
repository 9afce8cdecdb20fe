#!/usr/bin/env bash
# The operations tools the chart and alert tests need, installed from package registries into a cache outside
# the repository, pinned, and idempotent (a second `ensure` only checks and returns within a second).
#
#   scripts/tools.sh ensure     install whatever is missing, then print the tool versions
#   scripts/tools.sh env        print KEY=VALUE lines the tests read (bin dir, schema location, Kubernetes version)
#   scripts/tools.sh versions   print the pinned versions
#
# What comes from where:
#   helm, kubeconform   `go install` through the Go module proxy, into $RK_TOOLS_DIR/<tool>-<version>/
#   promtool, prometheus  Debian's `prometheus` package (apt-get; the service is not started)
#   kcat                Debian's `kcat` package: a librdkafka producer for the integration tests, which writes
#                       what the Python clients cannot (header keys that are not UTF-8)
#   postgresql         Debian's `postgresql` package: the throwaway cluster of the status store tests
#                       (scripts/postgres.sh; the Debian service is not started)
#   chromium           Debian's `chromium` package (and fonts-dejavu-core): the browser of the status page tests,
#                       driven by Playwright for Python (never `playwright install`)
#   pdftotext          Debian's `poppler-utils`: the report tests read the PDF report's text with it
#   axe-core           npm package, pinned, into $RK_TOOLS_DIR/axe-core-<version>/ (axe.min.js injected by the tests)
#   Java producer      tests/java/producer (Apache Kafka's Java client and the CloudEvents Java SDK, pinned in its
#                       pom.xml), built with Debian's maven and openjdk-17 from Maven Central into
#                       $RK_TOOLS_DIR/java-producer-<hash of its sources>/: a Java Fachverfahren for the integration tests
#   Go producer        tests/go/producer (IBM's sarama and the CloudEvents Go SDK, pinned in its go.mod/go.sum),
#                       built with go through the Go module proxy into $RK_TOOLS_DIR/go-producer-<hash>/
#   JS producer        tests/js/producer (kafkajs and the CloudEvents JavaScript SDK, pinned in its
#                       package-lock.json), `npm ci` from npm into $RK_TOOLS_DIR/js-producer-<hash>/
#   Kubernetes schemas  the PyPI package kubernetes-validate (JSON schemas of the core types), made standalone
#                       for kubeconform by tests/ops/schemagen.py
#   CRD schemas         ServiceMonitor and PrometheusRule, converted from the CRDs in the prometheus-operator Go module
#
# Environment:
#   RK_TOOLS_DIR   the cache (default ~/.cache/rueckkanal/tools)
#   GO             the go binary (default: go on PATH, else /usr/local/go/bin/go)
#   PYTHON         a Python with PyYAML (default: .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
HELM_KUBE_MINOR=37 # helm v3.22.0 is built on client-go v0.37 (Kubernetes 1.37)
KUBECONFORM_VERSION=v0.7.0
PROMETHEUS_OPERATOR_VERSION=v0.85.0
KUBERNETES_VALIDATE_VERSION=1.37.0
# The Kubernetes API version the rendered manifests are checked against (a schema set inside kubernetes-validate).
KUBE_VERSION=1.33.0
AXE_CORE_VERSION=4.10.3
# Kinds the chart renders; a kind missing here fails kubeconform with "could not find schema", never skips it.
KUBE_KINDS="deployment-apps-v1 service-v1 configmap-v1 secret-v1 serviceaccount-v1 networkpolicy-networking-v1
poddisruptionbudget-policy-v1 job-batch-v1"

tools="${RK_TOOLS_DIR:-$HOME/.cache/rueckkanal/tools}"
bin="$tools/bin"
schemas="$tools/schemas/k8s-$KUBE_VERSION-kv$KUBERNETES_VALIDATE_VERSION-po$PROMETHEUS_OPERATOR_VERSION"

say() { echo "tools.sh: $*" >&2; }

go_bin() {
    if [[ -n "${GO:-}" ]]; then echo "$GO"; return; fi
    if command -v go >/dev/null; then command -v go; return; fi
    if [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; return; fi
    say "Go is needed to build helm and kubeconform (https://go.dev/dl/ or Debian's golang-go)"
    exit 1
}

python_bin() {
    if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return; fi
    if [[ -x .venv/bin/python ]]; then echo .venv/bin/python; return; fi
    command -v python3
}

as_root() {
    if [[ "$(id -u)" == 0 ]]; then "$@"; return; fi
    command -v sudo >/dev/null || { say "need root (or sudo) for: $*"; exit 1; }
    sudo "$@"
}

# go install <module/cmd path> <version> <name> [ldflags]: one directory per version, so a pin change rebuilds.
go_tool() {
    local pkg="$1" version="$2" name="$3" ldflags="${4:-}"
    local dir="$tools/$name-$version"
    if [[ ! -x "$dir/$name" ]]; then
        say "building $name $version with go install (first time only)"
        GOBIN="$dir" GOFLAGS=-trimpath CGO_ENABLED=0 "$(go_bin)" install -ldflags "$ldflags" "$pkg@$version"
    fi
    ln -sfn "$dir/$name" "$bin/$name"
}

# Debian packages the tests need, each checked by a file it installs.
DEBIAN_NEEDS="/usr/bin/promtool:prometheus /usr/bin/kcat:kcat /usr/bin/chromium:chromium
/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core /usr/share/postgresql-common/pg_wrapper:postgresql
/usr/bin/pdftotext:poppler-utils /usr/share/maven/bin/mvn:maven
/usr/lib/jvm/java-17-openjdk-amd64/bin/javac:openjdk-17-jdk-headless"

debian_pkgs() {
    local missing="" need
    for need in $DEBIAN_NEEDS; do
        if [[ ! -e "${need%%:*}" ]]; then missing="$missing ${need##*:}"; fi
    done
    if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then missing="$missing postgresql"; fi
    if [[ -n "$missing" ]]; then
        say "installing Debian packages:$missing (services are not started)"
        # policy-rc.d 101 = "do not start services" for the length of this install, the Debian way;
        # an existing policy is left as it is.
        local policy=/usr/sbin/policy-rc.d own_policy=0
        if [[ ! -e "$policy" ]]; then
            printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
            as_root chmod +x "$policy"
            own_policy=1
        fi
        local status=0
        as_root apt-get update -qq || status=$?
        if ((status == 0)); then
            # shellcheck disable=SC2086  # the package list is meant to split
            DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends $missing \
                >/dev/null || status=$?
        fi
        if ((own_policy)); then as_root rm -f "$policy"; fi
        ((status == 0)) || { say "apt-get install$missing failed"; exit 1; }
    fi
    ln -sfn /usr/bin/promtool "$bin/promtool"
    ln -sfn /usr/bin/prometheus "$bin/prometheus"
    ln -sfn /usr/bin/kcat "$bin/kcat"
}

axe_core() {
    local dir="$tools/axe-core-$AXE_CORE_VERSION"
    if [[ -f "$dir/node_modules/axe-core/axe.min.js" ]]; then return 0; fi
    command -v npm >/dev/null || { say "npm is needed to install axe-core (Debian's npm)"; exit 1; }
    say "installing axe-core $AXE_CORE_VERSION from npm into $dir"
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$dir.partial" "axe-core@$AXE_CORE_VERSION" >/dev/null
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
}

JAVA_PRODUCER_SRC=tests/java/producer

GO_PRODUCER_SRC=tests/go/producer
JS_PRODUCER_SRC=tests/js/producer

# A producer's directory: named by a hash of its sources, so a change to the pins or the code rebuilds it.
producer_dir() {
    local name="$1" src="$2" hash
    hash="$(find "$src" -type f -not -path '*/target/*' -not -path '*/node_modules/*' -print0 | sort -z |
        xargs -0 cat | sha256sum)"
    echo "$tools/$name-${hash:0:12}"
}

java_producer_dir() { producer_dir java-producer "$JAVA_PRODUCER_SRC"; }
go_producer_dir() { producer_dir go-producer "$GO_PRODUCER_SRC"; }
js_producer_dir() { producer_dir js-producer "$JS_PRODUCER_SRC"; }

# Moves a finished build from DIR.partial into DIR; a DIR without .complete is built again by the next ensure.
finish_dir() {
    rm -rf "$1"
    mv "$1.partial" "$1"
    touch "$1/.complete"
}

java_producer() {
    local dir work
    dir="$(java_producer_dir)"
    if [[ -f "$dir/.complete" ]]; then return 0; fi
    say "building the Java producer (Kafka's Java client, CloudEvents Java SDK) with Maven into $dir"
    work="$(mktemp -d)"
    cp -r "$JAVA_PRODUCER_SRC/." "$work/"
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial/lib"
    if ! JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 /usr/share/maven/bin/mvn -B -f "$work/pom.xml" \
        package dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir.partial/lib" \
        -Dmaven.test.skip=true >"$work/maven.log" 2>&1; then
        tail -n 40 "$work/maven.log" >&2
        say "building the Java producer failed"
        exit 1
    fi
    cp "$work"/target/*.jar "$dir.partial/"
    rm -rf "$work"
    finish_dir "$dir"
}

go_producer() {
    local dir
    dir="$(go_producer_dir)"
    if [[ -f "$dir/.complete" ]]; then return 0; fi
    say "building the Go producer (sarama, CloudEvents Go SDK) with go into $dir"
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    (cd "$GO_PRODUCER_SRC" && GOFLAGS="-trimpath -mod=readonly" CGO_ENABLED=0 "$(go_bin)" build \
        -o "$dir.partial/producer" .)
    finish_dir "$dir"
}

js_producer() {
    local dir
    dir="$(js_producer_dir)"
    if [[ -f "$dir/.complete" ]]; then return 0; fi
    command -v npm >/dev/null || { say "npm is needed for the JavaScript producer (Debian's npm)"; exit 1; }
    say "installing the JavaScript producer (kafkajs, CloudEvents JavaScript SDK) with npm ci into $dir"
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    cp "$JS_PRODUCER_SRC"/package.json "$JS_PRODUCER_SRC"/package-lock.json "$JS_PRODUCER_SRC"/*.mjs "$dir.partial/"
    (cd "$dir.partial" && npm ci --silent --no-audit --no-fund --ignore-scripts >/dev/null)
    finish_dir "$dir"
}

schemas() {
    if [[ -f "$schemas/.complete" ]]; then return 0; fi
    say "generating Kubernetes and CRD JSON schemas for kubeconform into $schemas"
    local work py
    work="$(mktemp -d)"
    py="$(python_bin)"
    "$py" -m pip download --quiet --no-deps --disable-pip-version-check -d "$work" \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
    local operator
    operator="$("$(go_bin)" mod download -json \
        "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
        "$py" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
    rm -rf "$schemas.partial"
    # shellcheck disable=SC2086  # the kind list is meant to split
    "$py" tests/ops/schemagen.py \
        --kubernetes-validate-wheel "$work"/kubernetes_validate-*.whl \
        --kube-version "$KUBE_VERSION" \
        --kinds $KUBE_KINDS \
        --crd "$operator/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
        --crd "$operator/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" \
        --out "$schemas.partial/v$KUBE_VERSION-standalone-strict"
    rm -rf "$work"
    finish_dir "$schemas"
}

ensure() {
    mkdir -p "$bin"
    # The flags helm's own release build sets: its version, and the Kubernetes version of its client-go
    # (otherwise `helm template` assumes Kubernetes 1.20 and refuses the chart's kubeVersion).
    local h=helm.sh/helm/v3
    go_tool "$h/cmd/helm" "$HELM_VERSION" helm "-s -w -X $h/internal/version.version=$HELM_VERSION \
        -X $h/pkg/chartutil.k8sVersionMajor=1 -X $h/pkg/chartutil.k8sVersionMinor=$HELM_KUBE_MINOR \
        -X $h/pkg/lint/rules.k8sVersionMajor=1 -X $h/pkg/lint/rules.k8sVersionMinor=$HELM_KUBE_MINOR"
    go_tool github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" kubeconform \
        "-s -w -X main.version=$KUBECONFORM_VERSION"
    debian_pkgs
    axe_core
    java_producer
    go_producer
    js_producer
    schemas
    say "helm $("$bin/helm" version --short), kubeconform $("$bin/kubeconform" -v)," \
        "$("$bin/promtool" --version 2>&1 | head -n1), $("$bin/kcat" -V 2>&1 | head -n1)"
}

print_env() {
    echo "RK_TOOLS_BIN=$bin"
    echo "RK_KUBE_VERSION=$KUBE_VERSION"
    echo "RK_AXE_JS=$tools/axe-core-$AXE_CORE_VERSION/node_modules/axe-core/axe.min.js"
    echo "RK_CHROMIUM=/usr/bin/chromium"
    echo "RK_JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
    echo "RK_JAVA_PRODUCER_CLASSPATH=$(java_producer_dir)/*:$(java_producer_dir)/lib/*"
    echo "RK_GO_PRODUCER=$(go_producer_dir)/producer"
    echo "RK_NODE=$(command -v node || echo node)"
    echo "RK_JS_PRODUCER=$(js_producer_dir)/produce.mjs"
    # kubeconform's template: {{ .ResourceKind }}{{ .KindSuffix }} is e.g. deployment-apps-v1
    echo "RK_KUBE_SCHEMA_LOCATION=$schemas/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
}

versions() {
    echo "helm $HELM_VERSION"
    echo "kubeconform $KUBECONFORM_VERSION"
    echo "prometheus-operator CRDs $PROMETHEUS_OPERATOR_VERSION"
    echo "kubernetes-validate $KUBERNETES_VALIDATE_VERSION (schemas of Kubernetes $KUBE_VERSION)"
    echo "promtool/prometheus: Debian's prometheus package"
    echo "kcat: Debian's kcat package"
    echo "postgresql, chromium: Debian's packages"
    echo "axe-core $AXE_CORE_VERSION (npm)"
    echo "Java producer: kafka-clients and cloudevents-kafka as pinned in $JAVA_PRODUCER_SRC/pom.xml (Maven Central)"
    echo "Go producer: sarama and sdk-go as pinned in $GO_PRODUCER_SRC/go.mod (Go module proxy)"
    echo "JS producer: kafkajs and cloudevents as pinned in $JS_PRODUCER_SRC/package-lock.json (npm)"
}

case "${1:-}" in
    ensure) ensure ;;
    env) print_env ;;
    versions) versions ;;
    *) echo "usage: $0 ensure|env|versions" >&2; exit 2 ;;
esac
