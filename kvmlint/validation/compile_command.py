"""Which recorded compile commands the build check runs, and how: every output it writes goes to a
temporary directory, or the command is not run.

`compile_commands.json` is written by whoever configured the build directory,
and the build check runs what it records.  A unit's command is run only when
every argument of it is one kvmlint knows, so that what it writes is known:

- its program is a C compiler named as one (`gcc`, `cc`, `clang`, with a
  target prefix or a version suffix: `x86_64-linux-gnu-gcc-12`), found outside
  the tree and the build directories, where the unit's own directory would
  find it; it is executed by that path, never through a shell.  A `ccache` in
  front is dropped: a cache never decides whether a unit compiles, and it
  would write to its cache.  Anything else (`sh -c ...`, `/tmp/evil`, a
  "compiler" shipped in the tree) is refused;
- it compiles (`-c`) one input, the unit's source, in a directory of the tree
  or of a build directory;
- the options that name a file they write are pointed into the temporary
  directory, in every spelling: `-o F`, `-oF`, `--output[=]F`, `-MF[ ]F`,
  `-MJ[ ]F`, `-aux-info[=]F`, `-Wp,-MD,F`, `-Wp,-MMD,F`, `-Wp,-MF,F`;
- the options that write beside the object follow it there (`-MD`, `-MMD`,
  `-gsplit-dwarf`, `--coverage`, `-ftest-coverage`, `-fstack-usage`,
  `-fcallgraph-info`); tests run gcc through each;
- response files (`@FILE`) are read, inside the tree or a build directory,
  a regular file of at most 1 MiB, and their arguments judged as the rest;
  the compiler is given the arguments, not the file.

Refused, with the option named: options that write where the object does not
decide (`-save-temps`, `-dumpdir`, `-dumpbase`, `-fdump-*`, `-d<letters>`,
`-fprofile-*` but `-fprofile-arcs`/`-fprofile-update`, `-ftime-trace`,
`-fdiagnostics-format=*-file`, `-fmodules*`, `-serialize-diagnostics`, ...),
that load or run other programs (`-B`, `-specs`, `-wrapper`, `-fplugin`,
`-Xclang`, `-mllvm`), that pass options to the assembler or preprocessor
kvmlint does not read (`-Wa,`, `-Xpreprocessor`, `-Wp,` with anything but
dependency and macro options), that stop before compiling and so prove
nothing (`-E`, `-M`, `-MM`, `-###`, `--version`), and every other option
kvmlint does not know.  Linker options (`-Wl,`, `-Xlinker`) are inert: with
`-c` nothing links.  `-f`, `-W` and `-m` options are accepted unless listed
here: there are thousands, and those that write files are named above.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from kvmlint.files import UnreadableFile

RESPONSE_FILE_MAX_BYTES = 1024 * 1024
# The program names of C compilers: an optional target prefix, an optional version.
COMPILER_NAME = re.compile(r"(?:[A-Za-z0-9_.]+-)*(?:gcc|cc|clang)(?:-\d+(?:\.\d+)*)?")
CACHE_NAMES = frozenset({"ccache"})

# Options whose value is a separate argument, read or passed on unchanged.
SEPARATE_VALUE = frozenset({
    "-D", "-U", "-I", "-iquote", "-isystem", "-idirafter", "-iprefix", "-iwithprefix", "-iwithprefixbefore",
    "-isysroot", "-imultilib", "-include", "-imacros", "-A", "-x", "-MT", "-MQ", "--param", "--sysroot",
    "-target", "-Xlinker",
})
# The same options joined to their value, and options that only take one joined (`-std=gnu11`).
JOINED_VALUE = (
    "-D", "-U", "-I", "-iquote", "-isystem", "-idirafter", "-iprefix", "-iwithprefix", "-iwithprefixbefore",
    "-isysroot", "-imultilib", "-include", "-imacros", "-A", "-x", "-MT", "-MQ", "-O", "-std=", "--param=",
    "--sysroot=", "--target=",
)
FLAGS = frozenset({
    "-c", "-S", "-pipe", "-pthread", "-ansi", "-w", "-v", "-p", "-pg", "-pie", "-no-pie", "-static", "-shared",
    "-rdynamic", "-nostdinc", "-nostdlib", "-nostartfiles", "-nodefaultlibs", "-undef", "-trigraphs",
    "-traditional-cpp", "-C", "-CC", "-P", "-H", "-MD", "-MMD", "-MP", "-MG", "--coverage",
    "-no-canonical-prefixes", "-pedantic", "-pedantic-errors", "-Qunused-arguments", "-no-integrated-as",
})
# Options naming a file the compiler writes: (separate spelling, joined spelling, suffix of its file in the
# temporary directory).  -o and --output are rewritten apart: the object's name is the command's.
OUTPUTS = (("-MF", "-MF", ".d"), ("-MJ", "-MJ", ".json"), ("-aux-info", "-aux-info=", ".aux"))
WRITES_ELSEWHERE = "writes files where kvmlint cannot send them to its temporary directory"
REFUSED = (  # by prefix (a long option as its one-dash spelling too), checked before anything is accepted
    (("-save-temps", "-dumpdir", "-dumpbase", "-fdump-", "-fcompare-debug", "-fdiagnostics-add-output",
      "-fdiagnostics-set-output", "-fmodule", "-fimplicit-module", "-ftime-trace", "-fsave-optimization-record",
      "-foptimization-record", "-fcrash-diagnostics", "-fproc-stat-report", "-fdeps-", "-fcoverage-data-file",
      "-fcoverage-notes-file", "-fltrans", "-fwpa", "-fresolution", "-fself-test", "-serialize-diagnostics",
      "-gen-", "-gmodules"), WRITES_ELSEWHERE),
    (("-B", "-specs", "-wrapper", "-fplugin", "-fpass-plugin", "-Xclang", "-mllvm", "-gcc-", "-iplugindir"),
     "makes the compiler load or run other programs"),
    (("-print-", "-dump", "-help", "-target-help", "-version"), "does not compile the unit, so it proves nothing"),
    (("-Wa,", "-Xassembler"), "passes options to the assembler, which kvmlint does not read"),
    (("-Xpreprocessor",), "passes options to the preprocessor, which kvmlint does not read"),
)
STOP_BEFORE_COMPILING = frozenset({"-E", "-M", "-MM", "-###"})
KEPT_PROFILE_OPTIONS = ("-fprofile-arcs", "-fprofile-update=")  # instrument the object; write nothing else


class UnsafeCommand(Exception):
    """A recorded command the build check will not run; the message says why."""


@dataclass(frozen=True)
class CheckCommand:
    executable: str  # the compiler, by the path the unit's directory finds it at
    arguments: tuple[str, ...]  # argv: the recorded command, its outputs under the temporary prefix
    object_file: str  # where its object goes (replaced to preprocess into another file)


def check_command(arguments: tuple[str, ...], directory: Path, source: Path, prefix: Path,
                  confined_to: tuple[Path, ...]) -> CheckCommand:
    """The command the build check runs for a unit recorded as `arguments` (run in `directory`,
    compiling `source`): its outputs under `prefix` and no debug information.  `confined_to` are
    the tree and the build directories, in which the command must run and from which it may
    read response files, and outside of which its compiler must be.  UnsafeCommand says why not."""
    real_confines = tuple(os.path.realpath(p) for p in confined_to)
    if not any(within(os.path.realpath(directory), c) for c in real_confines):
        raise UnsafeCommand(f"it runs in {directory}, outside the tree and the build directories")
    words = list(arguments)
    while words and os.path.basename(words[0]) in CACHE_NAMES:
        words.pop(0)
    if not words:
        raise UnsafeCommand("it names no compiler (or is a command the shell cannot split)")
    executable = _compiler(words[0], directory, real_confines)
    words = _expand_response_files(words[1:], directory, real_confines)
    object_file = f"{prefix}.o"
    rewritten = [executable]
    inputs: list[str] = []
    has_object = compiles = debug = False
    index = 0
    while index < len(words):
        word = words[index]
        following = words[index + 1] if index + 1 < len(words) else None
        index += 1
        if not word.startswith("-") or word == "-":
            inputs.append(word)
            rewritten.append(word)
            continue
        if word in ("-o", "--output") or word.startswith("--output="):
            if word in ("-o", "--output"):
                index += _value_of(word, following)
            rewritten += ["-o", object_file]
            has_object = True
            continue
        if word.startswith("-o"):  # -oFILE
            rewritten += ["-o", object_file]
            has_object = True
            continue
        output = _named_output(word, following, prefix)
        if output is not None:
            spelled, consumed = output
            rewritten += spelled
            index += consumed
            continue
        if word.startswith("-Wp,"):
            rewritten.append(_preprocessor_options(word, prefix))
            continue
        _refuse_listed(word)
        if word in SEPARATE_VALUE:
            index += _value_of(word, following)
            rewritten += [word, following]
        elif word in FLAGS or word.startswith(JOINED_VALUE) or _accepted_family(word):
            rewritten.append(word)
        else:
            raise UnsafeCommand(f"{word}: an option kvmlint does not know (it runs only commands whose every option it knows)")
        compiles = compiles or word == "-c"
        debug = debug or word.startswith("-g")
    if not compiles:
        raise UnsafeCommand("it does not compile (-c): kvmlint runs only compile commands")
    if len(inputs) != 1 or os.path.normpath(os.path.join(directory, inputs[0])) != os.path.normpath(source):
        named = ", ".join(inputs) or "none"
        raise UnsafeCommand(f"its inputs ({named}) are not the unit's source alone")
    if debug:
        rewritten.append("-g0")  # the last -g option wins; the object is thrown away
    if not has_object:  # the compiler's default output would land in the build directory
        rewritten += ["-o", object_file]
    return CheckCommand(executable, tuple(rewritten), object_file)


def within(path: str | Path, directory: str | Path) -> bool:
    """Whether `path` is `directory` or below it (both as given: resolve them first)."""
    path, directory = str(path), str(directory)
    return path == directory or path.startswith(os.path.join(directory, ""))


def read_build_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a file of the build directory, as the build wrote it: a regular file, not
    through a symbolic link, at most `max_bytes`, never waiting on a FIFO.  FileNotFoundError
    when it is missing; UnreadableFile says why else not."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnreadableFile("a symbolic link, not the build's own file")
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile("not a regular file")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as error:
        raise UnreadableFile(f"cannot be read ({error.strerror or error})") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise UnreadableFile("not a regular file")
        with os.fdopen(os.dup(descriptor), "rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as error:
        raise UnreadableFile(f"cannot be read ({error.strerror or error})") from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise UnreadableFile(f"larger than {max_bytes // (1024 * 1024)} MiB")
    return data


def _value_of(option: str, value: str | None) -> int:
    if value is None:
        raise UnsafeCommand(f"{option} has no value")
    return 1


def _compiler(program: str, directory: Path, real_confines: tuple[str, ...]) -> str:
    """The path to execute for `program`, as the unit's directory finds it (PATH, relative
    entries from there), when it is named as a C compiler and installed outside the tree."""
    name = os.path.basename(program)
    if not COMPILER_NAME.fullmatch(name):
        raise UnsafeCommand(f"it runs {program}, which is not a C compiler kvmlint recognises by name "
                            "(gcc, cc, clang, with a target prefix or version suffix; ccache in front)")
    if "/" in program:
        candidates = [os.path.join(directory, program)]
    else:
        candidates = [os.path.join(directory, entry or ".", program)
                      for entry in os.environ.get("PATH", os.defpath).split(os.pathsep)]
    found = next((c for c in candidates if os.path.isfile(c) and os.access(c, os.X_OK)), None)
    if found is None:
        raise UnsafeCommand(f"its compiler {program} is not installed")
    real = os.path.realpath(found)
    if any(within(real, c) for c in real_confines):
        raise UnsafeCommand(f"its compiler {found} is inside the tree or a build directory: "
                            "kvmlint runs only a compiler installed outside them")
    return os.path.abspath(found)


def _named_output(word: str, following: str | None, prefix: Path) -> tuple[list[str], int] | None:
    """An option naming a file it writes, spelled to write under `prefix` instead, and how many
    following arguments it consumed; None for any other option."""
    for separate, joined, suffix in OUTPUTS:
        if word == separate:
            return [separate, f"{prefix}{suffix}"], _value_of(separate, following)
        if word.startswith(joined):
            return [separate, f"{prefix}{suffix}"], 0
    return None


def _preprocessor_options(word: str, prefix: Path) -> str:
    """`-Wp,OPTIONS` with its dependency file under `prefix`; refused unless every option is a
    dependency or macro option."""
    items = word.split(",")[1:]
    rewritten, index = [], 0
    while index < len(items):
        item = items[index]
        index += 1
        if item in ("-MD", "-MMD", "-MF"):
            if index >= len(items):
                raise UnsafeCommand(f"{word}: {item} has no file")
            rewritten += [item, f"{prefix}.wp.d"]
            index += 1
        elif item.startswith("-MF"):
            rewritten.append(f"-MF{prefix}.wp.d")
        elif item in ("-MT", "-MQ") and index < len(items):
            rewritten += [item, items[index]]
            index += 1
        elif item in ("-MP", "-MG") or item.startswith(("-D", "-U", "-I", "-MT", "-MQ")):
            rewritten.append(item)
        else:
            raise UnsafeCommand(f"{word}: passes {item} to the preprocessor, which kvmlint does not know")
    return ",".join(["-Wp", *rewritten])


def _refuse_listed(word: str) -> None:
    one_dash = "-" + word[2:] if word.startswith("--") else word
    for prefixes, why in REFUSED:
        if one_dash.startswith(prefixes):
            raise UnsafeCommand(f"{word}: {why}")
    if word in STOP_BEFORE_COMPILING:
        raise UnsafeCommand(f"{word}: does not compile the unit, so it proves nothing")
    if word.startswith("-fprofile-") and not word.startswith(KEPT_PROFILE_OPTIONS):
        raise UnsafeCommand(f"{word}: reads or writes profile data where kvmlint cannot send it to its temporary directory")
    if (word.startswith("-fopt-info") and "=" in word) or (word.startswith("-fdiagnostics-format=") and word.endswith("-file")):
        raise UnsafeCommand(f"{word}: {WRITES_ELSEWHERE}")
    if word.startswith("-d"):
        raise UnsafeCommand(f"{word}: makes the compiler write dump files")


def _accepted_family(word: str) -> bool:
    """-f, -W, -m and -g options, but for those refused above."""
    return word in ("-g", "-W") or (word.startswith(("-f", "-W", "-m", "-g")) and len(word) > 2)


def _expand_response_files(words: list[str], directory: Path, real_confines: tuple[str, ...]) -> list[str]:
    """The arguments with each `@FILE` replaced by the arguments it holds (read as gcc reads
    them); a response file outside the tree and the build directories, not a regular file,
    larger than 1 MiB or naming another response file is refused."""
    expanded = []
    for word in words:
        if not word.startswith("@"):
            expanded.append(word)
            continue
        path = os.path.join(directory, word[1:])
        if not any(within(os.path.realpath(path), c) for c in real_confines):
            raise UnsafeCommand(f"{word}: a response file outside the tree and the build directories")
        inner = split_response_file(_read_response_file(word, path))
        nested = next((w for w in inner if w.startswith("@")), None)
        if nested is not None:
            raise UnsafeCommand(f"{word}: names another response file, {nested}")
        expanded += inner
    return expanded


def _read_response_file(word: str, path: str) -> str:
    try:
        return read_build_file(Path(path), RESPONSE_FILE_MAX_BYTES).decode("utf-8", "surrogateescape")
    except UnreadableFile as why:
        raise UnsafeCommand(f"{word}: a response file kvmlint will not read ({why})") from None
    except OSError as error:
        raise UnsafeCommand(f"{word}: a response file kvmlint will not read ({error.strerror or error})") from None


def split_response_file(text: str) -> list[str]:
    """A response file's arguments as gcc's libiberty reads them: separated by white space,
    with single and double quotes, and a backslash that takes the next character as it is."""
    words: list[str] = []
    current: list[str] | None = None
    quote, escaped = None, False
    for character in text:
        if escaped:
            current.append(character)
            escaped = False
        elif character == "\\":
            current = [] if current is None else current
            escaped = True
        elif quote is not None:
            if character == quote:
                quote = None
            else:
                current.append(character)
        elif character.isspace():
            if current is not None:
                words.append("".join(current))
                current = None
        else:
            current = [] if current is None else current
            if character in "'\"":
                quote = character
            else:
                current.append(character)
    if current is not None:
        words.append("".join(current))
    return words
