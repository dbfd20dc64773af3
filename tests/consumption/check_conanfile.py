#!/usr/bin/env python3
"""Checks conanfile.py (and test_package/conanfile.py) without Conan.

Conan cannot be installed here, so the recipe is imported with a small stub of
the `conan` module and its methods are called by hand:
  - by default a header-library, package_id() clears the info, exports_sources
    covers include/;
  - set_version() reads project(stowage VERSION ...) from CMakeLists.txt;
  - requirements() asks for boost, lz4 and xxhash;
  - package() copies exactly the headers `cmake --install` installs (PREFIX),
    and LICENSE and COPYRIGHT under licenses/; the license is "BSL-1.0";
  - package_info(): cmake_file_name "stowage", a component for each target that
    install exports (stowage::stowage, ::boost_serializer, ::json_import,
    ::content, ::msgpack_serializer), each exported by it too, whose requires
    name only this recipe's components or its requirements;
  - with option tool (the stowage command-line tool): package type "unknown",
    package_id() keeps the settings, CLI11 and nlohmann/json required and CMake
    and pkgconf as tool requirements, exports_sources covers every file CMake
    reads to build it, generate() configures only the tool, package() copies
    the built tools/stowage to bin/ (and fails when it was not built), and
    package_info() puts bin/ on a component that takes the tool's requirements;
  - test_package/conanfile.py runs the packaged tool on the store its program
    keeps when the option is on, and only then.
Usage: check_conanfile.py <checkout> <cmake --install prefix>
"""
import ast
import fnmatch
import os
import re
import shutil
import sys
import tempfile
import types

root, prefix = sys.argv[1], sys.argv[2]
errors = []


def problem(msg):
    errors.append(msg)


# ---- a stub of the parts of the conan module the recipes import ----------
class _Settings:
    def __init__(self, values):
        self._values = values

    def get_safe(self, name):
        return self._values.get(name)

    def __getattr__(self, name):
        return self._values.get(name)


class _Options(dict):
    __getattr__ = dict.get


class _Component:
    def __init__(self):
        self.properties = {}
        self.requires = []
        self.system_libs = []
        self.bindirs = ["bin"]
        self.libdirs = ["lib"]
        self.includedirs = ["include"]

    def set_property(self, name, value):
        self.properties[name] = value


class _CppInfo(_Component):
    def __init__(self):
        super().__init__()
        self.components = {}

    def __getattribute__(self, name):
        if name == "components":
            comps = object.__getattribute__(self, "components")
            return _AutoDict(comps)
        return object.__getattribute__(self, name)


class _AutoDict:
    def __init__(self, d):
        self._d = d

    def __getitem__(self, k):
        return self._d.setdefault(k, _Component())

    def items(self):
        return self._d.items()


class _Info:
    cleared = False

    def clear(self):
        self.cleared = True


class _InfoWithOptions(_Info):
    def __init__(self, options):
        self.options = options


class ConanFile:
    def __init__(self, options=None):
        self.version = None
        self.requires_list = []
        self.tool_requires_list = []
        self.settings = _Settings({"os": "Linux", "compiler.cppstd": "20"})
        self.options = _Options(getattr(self, "default_options", {}))
        self.options.update(options or {})
        self.cpp_info = _CppInfo()
        self.info = _InfoWithOptions(self.options)
        self.commands = []

    def requires(self, ref, **kwargs):
        self.requires_list.append(ref)

    def tool_requires(self, ref, **kwargs):
        self.tool_requires_list.append(ref)

    def run(self, command, **kwargs):
        self.commands.append(command)


class _ConanException(Exception):
    pass


class _CMakeToolchain:
    made = []

    def __init__(self, conanfile):
        self.cache_variables = {}
        self.variables = {}
        _CMakeToolchain.made.append(self)

    def generate(self):
        pass


class _Generator:
    made = []

    def __init__(self, conanfile):
        _Generator.made.append(type(self).__name__)

    def generate(self):
        pass


class _CMakeDeps(_Generator):
    pass


class _PkgConfigDeps(_Generator):
    pass


class _EnvVars:
    def __init__(self, env):
        self.env = env

    def save_script(self, name):
        self.env.saved.append(name)


class _Environment:
    made = []

    def __init__(self):
        self.paths = []
        self.saved = []
        _Environment.made.append(self)

    def prepend_path(self, name, value):
        self.paths.append((name, value))

    def vars(self, conanfile, scope="build"):
        return _EnvVars(self)


def _copy(conanfile, pattern, src, dst, keep_path=True, **kwargs):
    copied = []
    for dirpath, _, files in os.walk(src):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            # As conan.tools.files.copy: the pattern against the path relative
            # to src, and with keep_path=False against the file name too.
            if fnmatch.fnmatch(rel, pattern) or (not keep_path and fnmatch.fnmatch(f, pattern)):
                out = rel if keep_path else f
                os.makedirs(os.path.join(dst, os.path.dirname(out)), exist_ok=True)
                shutil.copy2(os.path.join(dirpath, f), os.path.join(dst, out))
                copied.append(out)
    return copied


def _load(conanfile, path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _noop(*args, **kwargs):
    return None


modules = {
    "conan": {"ConanFile": ConanFile},
    "conan.errors": {"ConanException": _ConanException, "ConanInvalidConfiguration": _ConanException},
    "conan.tools": {},
    "conan.tools.build": {"check_min_cppstd": _noop, "can_run": lambda self: True},
    "conan.tools.files": {"copy": _copy, "load": _load},
    "conan.tools.layout": {"basic_layout": _noop},
    "conan.tools.cmake": {"CMake": object, "CMakeDeps": _CMakeDeps, "CMakeToolchain": _CMakeToolchain,
                          "cmake_layout": _noop},
    "conan.tools.env": {"Environment": _Environment},
    "conan.tools.gnu": {"PkgConfigDeps": _PkgConfigDeps},
}
for name, attrs in modules.items():
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m


def load_recipe(path):
    source = open(path, encoding="utf-8").read()
    ast.parse(source, path)  # a syntax error is reported with its line
    ns = {"__file__": path, "__name__": "recipe"}
    exec(compile(source, path, "exec"), ns)
    classes = [v for v in ns.values() if isinstance(v, type) and issubclass(v, ConanFile) and v is not ConanFile]
    if len(classes) != 1:
        raise SystemExit(f"{path}: expected one ConanFile class, found {len(classes)}")
    return classes[0]


# ---- the recipe -------------------------------------------------------------
Recipe = load_recipe(os.path.join(root, "conanfile.py"))
r = Recipe()
r.recipe_folder = root
r.source_folder = root

if Recipe.name != "stowage":
    problem(f"name is {Recipe.name!r}")
if getattr(Recipe, "package_type", None) != "header-library":
    problem("package_type is not 'header-library'")
if Recipe.default_options.get("tool") is not False:
    problem("option tool is missing or on by default (the default package is the headers alone)")
r.configure()
if r.package_type != "header-library":
    problem(f"configure() without the tool made the package type {r.package_type!r}")
exports = getattr(Recipe, "exports_sources", ())
exports = (exports,) if isinstance(exports, str) else exports
if not any(fnmatch.fnmatch("include/stowage/stowage.hpp", p) for p in exports):
    problem(f"exports_sources {exports} does not cover include/")

cmake_version = re.search(r"project\(stowage VERSION ([0-9.]+)", open(os.path.join(root, "CMakeLists.txt")).read()).group(1)
r.set_version()
if r.version != cmake_version:
    problem(f"set_version() gave {r.version!r}, CMakeLists.txt says {cmake_version}")

r.requirements()
names = {ref.split("/")[0] for ref in r.requires_list}
for want in ("boost", "lz4", "xxhash", "nlohmann_json", "openssl", "msgpack-cxx"):
    if want not in names:
        problem(f"requirements() does not require {want}")

for unwanted in ("cli11",):
    if unwanted in names:
        problem(f"requirements() without the tool requires {unwanted}")
r.build_requirements()
if r.tool_requires_list:
    problem(f"build_requirements() without the tool asks for {r.tool_requires_list}")

r.package_id()
if not r.info.cleared:
    problem("package_id() does not call self.info.clear()")
r.validate()
r.generate()  # nothing to generate for headers
if _CMakeToolchain.made or _Generator.made:
    problem("generate() without the tool generates files")

# package(): the same headers as cmake --install.
with tempfile.TemporaryDirectory() as pkg:
    r.package_folder = pkg
    r.package()
    def tree(d):
        return sorted(os.path.relpath(os.path.join(p, f), d) for p, _, fs in os.walk(d) for f in fs)
    packaged = tree(os.path.join(pkg, "include"))
    installed = tree(os.path.join(prefix, "include"))
    if packaged != installed:
        problem(f"package() headers differ from cmake --install: only packaged {sorted(set(packaged) - set(installed))}, "
                f"only installed {sorted(set(installed) - set(packaged))}")
    # The license text and the copyright notice travel with the package.
    notices = ["COPYRIGHT", "LICENSE"]
    for f in notices:
        if not os.path.exists(os.path.join(root, f)):
            problem(f"the repository has no {f} file")
    licenses = tree(os.path.join(pkg, "licenses")) if os.path.isdir(os.path.join(pkg, "licenses")) else []
    if licenses != notices:
        problem(f"package() puts {licenses} under licenses/, expected {notices}")

# package_info(): names CMakeDeps will generate.
r.package_info()
ci = r.cpp_info
if ci.properties.get("cmake_file_name") != "stowage":
    problem("cmake_file_name is not 'stowage' (find_package(stowage) would not find it)")
if ci.bindirs or ci.libdirs:
    problem("a header-library sets bindirs and libdirs to []")
comps = dict(object.__getattribute__(ci, "components"))
targets = {c.properties.get("cmake_target_name"): n for n, c in comps.items()}
exported = ""
for f in os.listdir(os.path.join(prefix, "share/stowage/cmake")):
    if f.startswith("stowageTargets"):
        exported += open(os.path.join(prefix, "share/stowage/cmake", f)).read()
want_targets = set(re.findall(r"add_library\((stowage::\w+) INTERFACE IMPORTED\)", exported)) | {"stowage::stowage"}
for t in sorted(want_targets):
    if t not in targets:
        problem(f"no component has cmake_target_name {t}")
    if f"add_library({t} INTERFACE IMPORTED)" not in exported:
        problem(f"{t}: cmake --install does not export it, so the two ways would differ")
if ci.properties.get("cmake_target_name") in targets:
    problem("the root cmake_target_name clashes with a component's")
for n, c in comps.items():
    if c.bindirs or c.libdirs:
        problem(f"component {n}: header-only, bindirs/libdirs must be []")
    for req in c.requires:
        pkg_name = req.split("::")[0] if "::" in req else None
        if pkg_name is None and req not in comps:
            problem(f"component {n} requires {req}, not a component of this recipe")
        if pkg_name is not None and pkg_name not in names:
            problem(f"component {n} requires {req}, but {pkg_name} is not a requirement")
core = comps.get(targets.get("stowage::stowage"))
if core is not None:
    for req in ("boost::headers", "lz4::lz4", "xxhash::xxhash"):
        if req not in core.requires:
            problem(f"stowage::stowage does not require {req}")

# ---- option tool: the stowage command-line tool -------------------------------
t = Recipe(options={"tool": True, "json_import": False})
t.recipe_folder = root
t.source_folder = root
t.generators_folder = os.path.join(root, "build", "generators")
t.configure()
if t.package_type != "unknown":
    problem(f"configure() with the tool leaves package type {t.package_type!r} (headers and an executable: 'unknown')")
t.requirements()
tool_names = {ref.split("/")[0] for ref in t.requires_list}
for want in ("cli11", "nlohmann_json", "boost", "lz4", "xxhash"):
    if want not in tool_names:
        problem(f"requirements() with the tool (and json_import off) does not require {want}")
t.build_requirements()
tool_reqs = {ref.split("/")[0] for ref in t.tool_requires_list}
for want in ("cmake", "pkgconf"):
    if want not in tool_reqs:
        problem(f"build_requirements() with the tool does not ask for {want}")
t.package_id()
if t.info.cleared:
    problem("package_id() clears the info with the tool (the executable depends on the settings)")
# Every file CMake reads to build the tool is exported.
needed = ["CMakeLists.txt"]
for sub in ("cmake", "tools"):
    for dirpath, _, files in os.walk(os.path.join(root, sub)):
        needed += [os.path.relpath(os.path.join(dirpath, f), root) for f in files]
for f in needed:
    if not any(fnmatch.fnmatch(f, p) for p in exports):
        problem(f"exports_sources {exports} does not cover {f}, which building the tool needs")
_CMakeToolchain.made.clear()
_Generator.made.clear()
t.generate()
if len(_CMakeToolchain.made) != 1:
    problem("generate() with the tool does not write one CMakeToolchain")
else:
    cv = _CMakeToolchain.made[0].cache_variables
    if cv.get("STOWAGE_BUILD_TOOLS") is not True:
        problem("generate() does not set STOWAGE_BUILD_TOOLS")
    for part in ("STOWAGE_BUILD_TESTS", "STOWAGE_BUILD_EXAMPLES", "STOWAGE_BUILD_BENCHMARKS"):
        if cv.get(part) is not False:
            problem(f"generate() does not turn {part} off (only the tool is built)")
    for opt in cv:
        if opt not in re.findall(r"option\((STOWAGE_\w+)", open(os.path.join(root, "CMakeLists.txt")).read()):
            problem(f"generate() sets {opt}, which CMakeLists.txt has no option() for")
for gen in ("_CMakeDeps", "_PkgConfigDeps"):
    if gen not in _Generator.made:
        problem(f"generate() with the tool does not run {gen[1:]} (find_package and pkg-config find the dependencies)")
if not any(p == ("PKG_CONFIG_PATH", t.generators_folder) for e in _Environment.made for p in e.paths):
    problem("generate() does not put the generators folder (liblz4.pc) on PKG_CONFIG_PATH")
with tempfile.TemporaryDirectory() as work:
    t.build_folder = os.path.join(work, "build")
    t.package_folder = os.path.join(work, "pkg")
    os.makedirs(os.path.join(t.build_folder, "tools", "CMakeFiles", "stowage_cli.dir"))
    try:
        t.package()
        problem("package() with the tool does not fail when tools/stowage was not built")
    except _ConanException:
        pass
    open(os.path.join(t.build_folder, "tools", "stowage"), "w").write("#!/bin/sh\n")
    t.package()
    if not os.path.isfile(os.path.join(t.package_folder, "bin", "stowage")):
        problem("package() with the tool does not put the built tools/stowage in bin/")
    headers = sorted(os.path.relpath(os.path.join(p, f), os.path.join(t.package_folder, "include"))
                     for p, _, fs in os.walk(os.path.join(t.package_folder, "include")) for f in fs)
    if headers != packaged:
        problem("package() with the tool packages other headers than without it")
t.package_info()
tcomps = dict(object.__getattribute__(t.cpp_info, "components"))
bins = [n for n, c in tcomps.items() if c.bindirs]
if bins != ["tool"] or tcomps["tool"].bindirs != ["bin"]:
    problem(f"package_info() with the tool: bin/ should be the bindirs of component 'tool' alone, not of {bins}")
else:
    for req in ("cli11::cli11", "nlohmann_json::nlohmann_json"):
        if req not in tcomps["tool"].requires:
            problem(f"component 'tool' does not require {req} (Conan wants every requirement used by a component)")
    if tcomps["tool"].includedirs:
        problem("component 'tool' has include directories (it holds no headers)")
used = {req.split("::")[0] for c in tcomps.values() for req in c.requires if "::" in req}
if tool_names - used:
    problem(f"with the tool, requirements {sorted(tool_names - used)} are used by no component")

# ---- test_package ------------------------------------------------------------
TP = load_recipe(os.path.join(root, "test_package", "conanfile.py"))
for m in ("requirements", "build", "test"):
    if not callable(getattr(TP, m, None)):
        problem(f"test_package/conanfile.py has no {m}()")
for with_tool in (False, True):
    tp = TP()
    tp.build_folder = "/tp/build"
    tp.cpp = types.SimpleNamespace(build=types.SimpleNamespace(bindir="/tp/build/bin"))
    dep = types.SimpleNamespace(options=_Options({"tool": with_tool}), package_folder="/pkg")
    tp.dependencies = {"stowage": dep}
    tp.test()
    ran_program = any("stowage_test_package" in c for c in tp.commands)
    ran_tool = [c for c in tp.commands if "/pkg/bin/stowage" in c]
    if not ran_program:
        problem("test_package's test() does not run the program")
    if with_tool and not any(" verify " in c for c in ran_tool):
        problem("test_package's test() does not run the packaged tool's verify with option tool")
    if not with_tool and ran_tool:
        problem("test_package's test() runs the tool without option tool")
tp_cmake = open(os.path.join(root, "test_package", "CMakeLists.txt")).read()
if "find_package(stowage CONFIG REQUIRED)" not in tp_cmake or "stowage::stowage" not in tp_cmake:
    problem("test_package/CMakeLists.txt does not find_package(stowage) and link stowage::stowage")
if getattr(Recipe, "license", None) != "BSL-1.0":
    problem(f"the recipe's license is {getattr(Recipe, 'license', None)!r}, not 'BSL-1.0' (the LICENSE file)")
for notice in ("COPYRIGHT", "LICENSE"):
    if notice not in Recipe.exports_sources:
        problem(f"exports_sources does not export {notice}")

if errors:
    print("conanfile.py:\n  " + "\n  ".join(errors))
    sys.exit(1)
print(f"conanfile.py: stowage/{r.version}, requires {sorted(r.requires_list)}, "
      f"targets {sorted(x for x in targets if x)}; with the tool also {sorted(tool_names - names)}: ok")
