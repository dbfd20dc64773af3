#!/usr/bin/env python3
"""Checks conanfile.py (and test_package/conanfile.py) without Conan.

Conan cannot be installed here, so the recipe is imported with a small stub of
the `conan` module and its methods are called by hand:
  - header-library, package_id() clears the info, exports_sources covers include/;
  - set_version() reads project(stowage VERSION ...) from CMakeLists.txt;
  - requirements() asks for boost, lz4 and xxhash;
  - package() copies exactly the headers `cmake --install` installs (PREFIX),
    and LICENSE and COPYRIGHT under licenses/; the license is "BSL-1.0";
  - package_info(): cmake_file_name "stowage", a component for each target that
    install exports (stowage::stowage, ::boost_serializer, ::json_import,
    ::content, ::msgpack_serializer), each exported by it too, whose requires
    name only this recipe's components or its requirements.
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


class ConanFile:
    def __init__(self):
        self.version = None
        self.requires_list = []
        self.settings = _Settings({"os": "Linux", "compiler.cppstd": "20"})
        self.options = _Options(getattr(self, "default_options", {}))
        self.cpp_info = _CppInfo()
        self.info = _Info()

    def requires(self, ref, **kwargs):
        self.requires_list.append(ref)


def _copy(conanfile, pattern, src, dst, **kwargs):
    copied = []
    for dirpath, _, files in os.walk(src):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            if fnmatch.fnmatch(rel, pattern):  # as conan.tools.files.copy: the path relative to src
                os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
                shutil.copy2(os.path.join(dirpath, f), os.path.join(dst, rel))
                copied.append(rel)
    return copied


def _load(conanfile, path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _noop(*args, **kwargs):
    return None


modules = {
    "conan": {"ConanFile": ConanFile},
    "conan.tools": {},
    "conan.tools.build": {"check_min_cppstd": _noop, "can_run": lambda self: True},
    "conan.tools.files": {"copy": _copy, "load": _load},
    "conan.tools.layout": {"basic_layout": _noop},
    "conan.tools.cmake": {"CMake": object, "cmake_layout": _noop},
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

r.package_id()
if not r.info.cleared:
    problem("package_id() does not call self.info.clear()")
r.validate()

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

# ---- test_package ------------------------------------------------------------
TP = load_recipe(os.path.join(root, "test_package", "conanfile.py"))
for m in ("requirements", "build", "test"):
    if not callable(getattr(TP, m, None)):
        problem(f"test_package/conanfile.py has no {m}()")
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
      f"targets {sorted(t for t in targets if t)}: ok")
