#!/usr/bin/env bash
# macOS recipe: photosearch.app and a .dmg. UNTESTED: no Mac was available when it was written
# (see docs/packaging.md). Run on macOS 11 or newer with Python 3.11 (python.org or Homebrew):
#
#   packaging/macos/make_dmg.sh            # CPU flavour (onnxruntime, with the CoreML provider)
#
# 1. packaging/build.py builds the bundle with the same spec as on Linux; on macOS the spec adds
#    a BUNDLE step, so build/dist-cpu/ holds photosearch.app beside the one-folder bundle.
# 2. The .app is signed ad hoc (codesign -s -), enough to run on the building Mac; set
#    SIGN_IDENTITY="Developer ID Application: …" to sign for distribution (then notarise with
#    `xcrun notarytool submit … --wait` and `xcrun stapler staple`).
# 3. hdiutil makes build/dist-cpu/photosearch-VERSION-macos-ARCH.dmg with an Applications link.
# The app bundle's own `--self-test`: photosearch.app/Contents/MacOS/photosearch --self-test
set -euo pipefail
cd "$(dirname "$0")/../.."
flavour=cpu   # macOS has one ONNX Runtime wheel: onnxruntime (CPU + CoreML)
python3 packaging/build.py --flavour "$flavour" "$@"
dist="build/dist-$flavour"
app="$dist/photosearch.app"
[ -d "$app" ] || { echo "no $app: did the BUNDLE step run?" >&2; exit 1; }
codesign --force --deep --options runtime --sign "${SIGN_IDENTITY:--}" "$app"
"$app/Contents/MacOS/photosearch" --version
version=$(python3 -c "import tomllib;print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")
stage="$dist/dmg"
rm -rf "$stage" && mkdir -p "$stage"
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
dmg="$dist/photosearch-$version-macos-$(uname -m).dmg"
rm -f "$dmg"
hdiutil create -volname photosearch -srcfolder "$stage" -ov -format UDZO "$dmg"
rm -rf "$stage"
echo "$dmg"
