// The visitor's device and environment, as the platform's DeviceInfo message records
// them (no time zone or screen size: the message has no field for them).

import { create } from "@bufbuild/protobuf";
import { DeviceInfoSchema, type DeviceInfo } from "../gen/helpdesk/conversation/v1/conversation_pb";

/** The operating system, from the client hints when the browser gives them, else the user agent. */
function operatingSystem(): string {
  const hints = (navigator as Navigator & { userAgentData?: { platform?: string } }).userAgentData;
  if (hints?.platform) return hints.platform;
  const ua = navigator.userAgent;
  const known: [RegExp, string][] = [
    [/Windows NT/, "Windows"],
    [/iPhone|iPad|iPod/, "iOS"],
    [/Android/, "Android"],
    [/CrOS/, "ChromeOS"],
    [/Mac OS X|Macintosh/, "macOS"],
    [/Linux/, "Linux"],
  ];
  return known.find(([re]) => re.test(ua))?.[1] ?? "";
}

/** This page view's device info. */
export function currentDevice(): DeviceInfo {
  const connection = (navigator as Navigator & { connection?: { effectiveType?: string } }).connection;
  return create(DeviceInfoSchema, {
    os: operatingSystem(),
    userAgent: navigator.userAgent.slice(0, 1000),
    currentPage: location.href.slice(0, 1000),
    locale: navigator.language || "",
    networkType: connection?.effectiveType ?? "",
  });
}
