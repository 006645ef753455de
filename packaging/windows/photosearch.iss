; Inno Setup recipe for the photosearch Windows installer. UNTESTED: no Windows machine was
; available when it was written (see docs/packaging.md). It packs the one-folder bundle that
; packaging/build.py makes with the same spec as on Linux:
;
;   py -3.11 packaging\build.py --flavour cpu          (or gpu: onnxruntime-gpu, CUDA 12)
;   iscc /DFlavour=cpu packaging\windows\photosearch.iss
;
; Output: build\dist-cpu\photosearch-0.1.0-windows-x64-cpu-setup.exe
; Installs per user by default (no administrator needed), with a Start-menu entry, an optional
; desktop icon, photosearch.exe on the user's PATH (optional), and an uninstaller. The library
; (%LOCALAPPDATA%\photosearch) is left in place on uninstall: it holds the user's catalog.

#ifndef Flavour
  #define Flavour "cpu"
#endif
#define AppName "photosearch"
#define AppVersion "0.1.0"
#define Dist "..\..\build\dist-" + Flavour

[Setup]
AppId={{6E0C5C8B-2F4E-4C57-9C63-7B0D1F0A9E21}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=photosearch developers
DefaultDirName={autopf}\photosearch
DefaultGroupName=photosearch
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#Dist}
OutputBaseFilename=photosearch-{#AppVersion}-windows-x64-{#Flavour}-setup
SetupIconFile=..\..\resources\icons\photosearch.ico
UninstallDisplayIcon={app}\photosearch.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add photosearch to PATH (command line)"; Flags: unchecked

[Files]
Source: "{#Dist}\photosearch\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\photosearch"; Filename: "{app}\photosearch.exe"; Parameters: "gui"
Name: "{group}\photosearch self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\photosearch.exe"" --self-test"
Name: "{group}\Uninstall photosearch"; Filename: "{uninstallexe}"
Name: "{autodesktop}\photosearch"; Filename: "{app}\photosearch.exe"; Parameters: "gui"; Tasks: desktopicon

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\photosearch.exe"; Parameters: "gui"; Description: "{cm:LaunchProgram,photosearch}"; Flags: nowait postinstall skipifsilent

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Paths: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Paths) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;
