#!/usr/bin/env node
import "../dist/conary.mjs"
