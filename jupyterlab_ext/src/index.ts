/**
 * nbdetect's ready notebook cells in JupyterLab: one palette command per cell
 * (category "nbdetect") and an "nbdetect" notebook toolbar button opening a menu
 * of the same commands. The cells come from the Python package through the
 * server extension (GET <base_url>/nbdetect/cells), so there is one source.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, ToolbarButton } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import {
  INotebookModel,
  INotebookTracker,
  Notebook,
  NotebookPanel
} from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { Menu } from '@lumino/widgets';

/** One cell as served by nbdetect.cells.as_json(). */
interface INbdetectCell {
  id: string;
  title: string;
  description: string;
  source: string;
}

const CATEGORY = 'nbdetect';
const UNAVAILABLE = 'nbdetect:cells-unavailable';

function commandId(cellId: string): string {
  return `nbdetect:insert-${cellId}`;
}

async function fetchCells(): Promise<INbdetectCell[]> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'nbdetect', 'cells');
  const response = await ServerConnection.makeRequest(
    url,
    { method: 'GET' },
    settings
  );
  if (!response.ok) {
    throw new ServerConnection.ResponseError(response);
  }
  return (await response.json()) as INbdetectCell[];
}

/** Insert a code cell holding `source` below the active cell and make it active. */
function insertBelow(notebook: Notebook, source: string): void {
  const model = notebook.model;
  if (!model) {
    return;
  }
  const index = notebook.activeCell ? notebook.activeCellIndex + 1 : 0;
  // Trusted like any cell the user creates: the text is code the user chose to insert.
  model.sharedModel.insertCell(index, {
    cell_type: 'code',
    source,
    metadata: { trusted: true }
  });
  notebook.activeCellIndex = index;
  notebook.deselectAll();
  notebook.mode = 'command';
  notebook.activate();
  const cell = notebook.activeCell;
  if (cell) {
    void notebook.scrollToCell(cell);
  }
}

/** Adds the "nbdetect" button to every notebook's toolbar. */
class ToolbarMenuExtension
  implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel>
{
  constructor(private readonly menu: Menu) {}

  createNew(panel: NotebookPanel): IDisposable {
    const button = new ToolbarButton({
      label: 'nbdetect',
      className: 'nbdetect-toolbar-button',
      tooltip: 'Insert an nbdetect cell below the active cell',
      onClick: () => {
        const rect = button.node.getBoundingClientRect();
        this.menu.open(rect.left, rect.bottom);
      }
    });
    panel.toolbar.insertItem(10, 'nbdetect', button);
    return new DisposableDelegate(() => button.dispose());
  }
}

function addCommands(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  palette: ICommandPalette,
  menu: Menu,
  cells: INbdetectCell[]
): void {
  for (const cell of cells) {
    const id = commandId(cell.id);
    app.commands.addCommand(id, {
      label: cell.title,
      caption: cell.description,
      isEnabled: () => tracker.currentWidget !== null,
      execute: () => {
        const panel = tracker.currentWidget;
        if (panel) {
          insertBelow(panel.content, cell.source);
        }
      }
    });
    palette.addItem({ command: id, category: CATEGORY });
    menu.addItem({ command: id });
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbdetect-jupyterlab:plugin',
  description: 'Insert nbdetect notebook cells from the command palette or a notebook toolbar menu.',
  autoStart: true,
  requires: [INotebookTracker, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette
  ): void => {
    const menu = new Menu({ commands: app.commands });
    menu.title.label = 'nbdetect';
    menu.addClass('nbdetect-menu');
    // Registered at once so notebooks restored at start-up get the button too;
    // the menu items follow when the cells have arrived.
    app.docRegistry.addWidgetExtension('Notebook', new ToolbarMenuExtension(menu));
    fetchCells()
      .then(cells => addCommands(app, tracker, palette, menu, cells))
      .catch(reason => {
        const hint =
          'nbdetect: could not load the cells from the server extension ' +
          '(is it enabled? `jupyter server extension list`)';
        console.error(hint, reason);
        // Say so in the menu itself rather than leaving it empty.
        app.commands.addCommand(UNAVAILABLE, {
          label: 'Cells unavailable: is the nbdetect server extension enabled?',
          caption: hint,
          isEnabled: () => false,
          execute: () => undefined
        });
        menu.addItem({ command: UNAVAILABLE });
      });
  }
};

export default plugin;
