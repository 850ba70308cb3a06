"""The files of an import, gathered into groups in a temporary folder: uploads (name, bytes),
files and folders on disk, zip archives expanded safely, gzip files unpacked.

A :class:`Group` is the files of one folder (of the disk, of an archive, or an upload's top
level): a file's companions (its Fermi energy, its KPOINTS) are looked for in its group. Every
group is a real folder in the temporary folder, so the readers of :mod:`backend.data.bands`
read it as they read any folder (disk files are linked there, not copied); an
:class:`InputFile` keeps the name its messages give (its ``source``).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from backend.data.importing.detect import is_other_name, maybe_companion
from backend.data.importing.records import ImportLimits, Problem, problem
from backend.errors import DataError

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


@dataclass
class InputFile:
    """One file of a group: ``path`` in the temporary folder, ``source`` as messages name it;
    ``given``: asked for (a file of an unknown format is then a problem), else only found beside
    one that was (a possible companion, e.g. an OUTCAR)."""

    path: Path
    source: str
    given: bool = True


@dataclass
class Group:
    """The files of one folder. ``folder``: its place in the temporary folder; ``where``: how
    messages name it; ``label``: the folder's own name (it names a material whose file name
    does not, and may say a plot's window), None for an upload's top level."""

    folder: Path
    where: str
    label: str | None
    files: list[InputFile] = field(default_factory=list)

    def names(self) -> set[str]:
        return {f.path.name for f in self.files}


def safe_relative(name: str) -> str | None:
    """``name`` (of an archive member or an upload) as a relative POSIX path, or None when it
    is absolute or climbs out with ``..``."""
    if not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return None
    parts = [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _hidden(rel: str) -> bool:
    """macOS resource forks and dot files: never the user's data."""
    parts = rel.split("/")
    return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


class Gatherer:
    """Collects the groups of one import in ``tmp`` (which the caller owns and removes), with
    a problem for each file it refuses."""

    def __init__(self, tmp: Path, limits: ImportLimits):
        self.tmp = Path(tmp)
        self.limits = limits
        self.groups: dict[Path, Group] = {}
        self.problems: list[Problem] = []
        self.total = 0
        self._serial = 0
        self._disk: dict[Path, Group] = {}  # a disk folder -> its group

    # ---- the entry points ----------------------------------------------------------------------

    def add_upload(self, name: str, data: bytes) -> None:
        rel = safe_relative(name)
        if rel is None:
            self.problems.append(problem(name, f"{name!r}: an upload's name may not be absolute or hold '..'"))
            return
        if _hidden(rel) or is_other_name(Path(rel).name) or not self._within_limits(name, len(data)):
            return
        dest = self.tmp / "upload" / rel
        if dest.exists():
            self.problems.append(problem(name, f"{name}: a second file of that name in one upload (only the first is read)"))
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        parent = Path(rel).parent
        where = "upload" if str(parent) == "." else f"upload:{parent.as_posix()}"
        group = self._group(dest.parent, where, None if str(parent) == "." else parent.name)
        self._add(group, dest, name, given=True, in_archive=False)

    def add_path(self, path: str | os.PathLike) -> None:
        path = Path(path)
        if path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
                for name in sorted(f for f in files if not f.startswith(".")):
                    self._add_disk_file(Path(folder) / name, given=True)
        elif path.is_file():
            self._add_disk_file(path, given=True)
        else:
            self.problems.append(problem(str(path), f"{path}: no such file or folder"))

    def finish(self) -> list[Group]:
        """The groups, with the files beside each given disk file that were not given (as
        possible companions)."""
        for folder, group in self._disk.items():
            have = {f.path.name for f in group.files}
            try:
                entries = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
            except OSError:
                continue
            for p in entries:
                if p.name not in have and maybe_companion(p.name):
                    self._add_disk_file(p, given=False)
        return [g for g in self.groups.values() if g.files]

    # ---- inside ------------------------------------------------------------------------------------

    def _within_limits(self, source: str, size: int) -> bool:
        lim = self.limits
        if size > lim.max_file_bytes:
            self.problems.append(problem(source, f"{source}: {_mb(size)} is over the limit of {_mb(lim.max_file_bytes)} per file"))
            return False
        if self.total + size > lim.max_total_bytes:
            self.problems.append(problem(source, f"{source}: not read: with it the files of this import pass the limit of "
                                                 f"{_mb(lim.max_total_bytes)} in all"))
            return False
        self.total += size
        return True

    def _group(self, folder: Path, where: str, label: str | None) -> Group:
        if folder not in self.groups:
            self.groups[folder] = Group(folder, where, label)
        return self.groups[folder]

    def _new_folder(self, kind: str) -> Path:
        self._serial += 1
        folder = self.tmp / f"{kind}{self._serial}"
        folder.mkdir(parents=True)
        return folder

    def _add_disk_file(self, path: Path, *, given: bool) -> None:
        parent = path.parent.resolve()
        if parent not in self._disk:
            where = str(path.parent)
            self._disk[parent] = self._group(self._new_folder("disk"), where, parent.name)
        group = self._disk[parent]
        link = group.folder / path.name
        if link.exists() or link.is_symlink():
            return  # given twice (a file and its folder)
        if given and is_other_name(path.name):
            return
        if given:
            try:
                size = path.stat().st_size
            except OSError as exc:
                self.problems.append(problem(str(path), f"{path}: cannot be read: {exc.strerror}"))
                return
            if not self._within_limits(str(path), size):
                return
        os.symlink(path.resolve(), link)
        self._add(group, link, str(path), given=given, in_archive=False)

    def _add(self, group: Group, path: Path, source: str, *, given: bool, in_archive: bool) -> None:
        """A file that is in place: an archive is expanded, a gzip file unpacked, others join
        the group."""
        try:
            with open(path, "rb") as fh:
                head = fh.read(4)
        except OSError as exc:
            if given:
                self.problems.append(problem(source, f"{source}: cannot be read: {exc.strerror}"))
            return
        if head.startswith(ZIP_MAGIC):
            if not given:
                return
            if in_archive:
                self.problems.append(problem(source, f"{source}: a zip inside a zip is not expanded; unpack it first"))
                return
            self._expand_zip(path, source)
        elif head.startswith(GZIP_MAGIC):
            self._gunzip(group, path, source, given=given)
        else:
            group.files.append(InputFile(path, source, given))

    def _gunzip(self, group: Group, path: Path, source: str, *, given: bool) -> None:
        name = path.name[:-3] if path.name.lower().endswith(".gz") else f"{path.name}.unpacked"
        dest = group.folder / name
        if dest.exists() or dest.is_symlink():
            if given:
                self.problems.append(problem(source, f"{source}: {name} is there unpacked too; that one is read"))
            return
        limit = self.limits.max_file_bytes
        size = 0
        try:
            with gzip.open(path, "rb") as src, open(dest, "wb") as out:
                while chunk := src.read(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise DataError(f"{source}: unpacks to more than the limit of {_mb(limit)} per file")
                    out.write(chunk)
        except (OSError, EOFError, DataError) as exc:
            dest.unlink(missing_ok=True)
            if given:
                message = str(exc) if isinstance(exc, DataError) else f"{source}: not a readable gzip file: {exc}"
                self.problems.append(problem(source, message))
            return
        group.files.append(InputFile(dest, source, given))

    def _expand_zip(self, path: Path, source: str) -> None:
        folder = self._new_folder("zip")
        try:
            members = expand_zip(path, source, folder, limits=self.limits)
        except DataError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self.problems.append(problem(source, str(exc)))
            return
        stem = Path(source.split(":")[-1]).stem
        for rel, dest, too_big in members:
            member = f"{source}:{rel}"
            if too_big and is_other_name(dest.name):
                continue
            if too_big:
                self.problems.append(problem(member, f"{member}: over the limit of {_mb(self.limits.max_file_bytes)} per file"))
                continue
            parent = Path(rel).parent
            label = parent.name if str(parent) != "." else stem
            where = source if str(parent) == "." else f"{source}:{parent.as_posix()}"
            self._add(self._group(dest.parent, where, label), dest, member, given=True, in_archive=True)


def expand_zip(path: Path, source: str, dest: Path, *, limits: ImportLimits) -> list[tuple[str, Path, bool]]:
    """Expand the zip archive at ``path`` into ``dest``: (member name, file, over the per-file
    limit) for each file member (hidden files and ``__MACOSX`` left out).

    Refuses (DataError naming ``source`` and the member) an archive with a member whose name is
    absolute or climbs out with ``..``, a symbolic link, more than ``limits.max_members``
    members, or more than ``limits.max_expanded_bytes`` expanded: by the sizes it declares, and
    counted while reading (a declared size can lie)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{source}: not a readable zip archive: {exc}") from None
    with archive:
        infos = archive.infolist()
        _check_members(infos, source, limits)
        out, total = [], 0
        for info in infos:
            rel = safe_relative(info.filename)
            if info.is_dir() or _hidden(rel):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with archive.open(info) as src, open(target, "wb") as fh:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        total += len(chunk)
                        if total > limits.max_expanded_bytes:
                            raise DataError(f"{source}: expands to more than the limit of {_mb(limits.max_expanded_bytes)} "
                                            f"(found while reading {info.filename}, past the sizes the archive declares)")
                        if written > limits.max_file_bytes:
                            break
                        fh.write(chunk)
            except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, zipfile.LargeZipFile) as exc:
                raise DataError(f"{source}: member {info.filename} cannot be read: {exc}") from None
            too_big = written > limits.max_file_bytes
            if too_big:
                target.unlink()
            out.append((rel, target, too_big))
        return out


def _check_members(infos, source: str, limits: ImportLimits) -> None:
    files = [i for i in infos if not i.is_dir()]
    if len(files) > limits.max_members:
        raise DataError(f"{source}: {len(files)} files in the archive, over the limit of {limits.max_members}")
    for info in infos:
        if safe_relative(info.filename) is None:
            raise DataError(f"{source}: member {info.filename!r} has an absolute name or climbs out with '..': "
                            "the archive is not read")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"{source}: member {info.filename!r} is a symbolic link: the archive is not read")
    declared = sum(i.file_size for i in files)
    if declared > limits.max_expanded_bytes:
        raise DataError(f"{source}: expands to {_mb(declared)}, over the limit of {_mb(limits.max_expanded_bytes)}")


def _mb(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB" if size >= 1 << 20 else f"{size} bytes"
