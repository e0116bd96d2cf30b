@echo off
rem Doppel portable launcher for Windows. With a portable Python in dependencies\Python (see
rem dependencies\README.md) it starts the app directly; otherwise it sets up .venv and starts it.
setlocal
cd /d "%~dp0"
set "PYTHON=%~dp0dependencies\Python\python.exe"
if exist "%PYTHON%" (
    "%PYTHON%" main.py %*
    goto :end
)
where py >nul 2>nul
if %errorlevel%==0 (
    py -3 tools\bootstrap.py -- %*
) else (
    python tools\bootstrap.py -- %*
)
:end
if errorlevel 1 pause
endlocal
